"""Regular gatherings: calendar events on a recurrence rule in the tenant's time zone, RSVPs
with capacity and a waitlist, reminders and no-show follow-ups through the outbox, and
attendance by code or by an ingested activity."""
