"""Complaints and crisis: tickets with status, owner and SLA timers; a crisis alert when
complaints cluster on a product, surface in a large group or match sensitive words."""
