"""Calendar events, their RSVPs per occurrence and the attendance recorded."""

from sqlalchemy import Column, Index, Integer, PrimaryKeyConstraint, String, Table

from shequn.db import Id, UTCDateTime, metadata

calendar_events = Table(
    "calendar_events",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("community_id", Id, nullable=True),
    Column("group_id", Id, nullable=True),
    Column("kind", String(16), nullable=False),  # class, meetup, festival, lab, live
    Column("title", String(120), nullable=False),
    Column("rrule", String(500), nullable=False),
    Column("starts_at", UTCDateTime(), nullable=False),  # the first occurrence (DTSTART)
    Column("time_zone", String(64), nullable=False),  # the zone the rule is read in
    Column("duration_minutes", Integer, nullable=False),
    Column("capacity", Integer, nullable=True),  # seats per occurrence; null: no limit
    Column("points", Integer, nullable=False),  # for attending an occurrence
    Column("remind_minutes", Integer, nullable=False),
    Column("attendance_code", String(12), nullable=False),
    Column("lecturer_id", Id, nullable=True),  # the member who gives the class
    Column("staff_account_id", Id, nullable=True),  # who sends reminders and follow-ups
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "lecturer_id"),
)

event_rsvps = Table(
    "event_rsvps",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("event_id", Id, nullable=False),
    Column("occurrence_at", UTCDateTime(), nullable=False),
    Column("member_id", Id, nullable=False),
    Column("status", String(12), nullable=False),  # confirmed, waitlisted, cancelled
    Column("seq", Integer, nullable=False),  # the order of asking: the waitlist's order
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "event_id", "occurrence_at", "member_id"),
)

event_attendance = Table(
    "event_attendance",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("event_id", Id, nullable=False),
    Column("occurrence_at", UTCDateTime(), nullable=False),
    Column("member_id", Id, nullable=False),
    Column("via", String(12), nullable=False),  # code, activity, staff
    Column("attended_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "event_id", "occurrence_at", "member_id"),
    Index(None, "tenant_id", "member_id", "attended_at"),
)
