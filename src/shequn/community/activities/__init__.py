"""Activities from outside channels (messages, likes, visits, check-ins, adds, replies,
feedback): ingestion by API and signed webhook, idempotent on the external event id and
counted in event time. Other capabilities read them through `shequn.community.activities.facts`
(see its docstring)."""
