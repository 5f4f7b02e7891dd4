"""Signed webhooks out: endpoints a tenant registers, and the outbox of deliveries the events
fill in the same statement as themselves."""
