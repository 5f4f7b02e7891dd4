"""Use cases that span domains, each one transaction: a registration with its referral binding,
a plan checked for compliance, settings that re-check the active plan, tiers that refer to the
catalog. Flows may call any domain; no domain calls a flow."""
