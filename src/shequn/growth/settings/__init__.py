"""A tenant's growth settings: where share links lead, how points are earned, spent and
expire, the stock cover limit and buyback policy, and the velocity that raises a fraud hold."""
