"""Community operations: communities (人 命 器 仪 场 领), venues, Dunbar-capped groups, the
staff-account matrix, rituals (welcomes, badges, certificates, the chronicle), activities from
outside channels, and the outbox through which everything the system wants sent goes.

Sub-packages, one idea each: `communities` (communities, venues, memberships), `groups`
(placement, join codes, split, import), `staff` (accounts, assignment, handover, KPIs),
`rituals` (templates, badges, certificates, chronicle), `activities` (ingestion and facts),
`outbox` (messages, adapters, dispatch). Public entry points for other capabilities:
`shequn.community.outbox.enqueue_messages` and `shequn.community.activities.facts`.
"""
