"""Group health: active ratio, silent and drifting members, message concentration and
customer messages left unanswered beyond the reply-time SLA; alerts."""
