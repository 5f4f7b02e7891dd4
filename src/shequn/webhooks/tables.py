"""The webhook tables. `shequn.events.service` writes into `webhook_deliveries` (and reads
`webhook_subscriptions` and `webhook_endpoints`) by name in the statement that records the
events; the columns it names are checked against these tables by the test suite."""

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from shequn.db import Id, UTCDateTime, metadata

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("url", String(2048), nullable=False),
    Column("description", String(200), nullable=False),
    Column("active", Boolean, nullable=False),
    # The signing secret is never stored: it is derived from SHEQUN_SECRET_KEY and this salt
    # (`rules.signing_secret`). A rotation keeps the previous salt until it expires.
    Column("secret_salt", String(64), nullable=False),
    Column("previous_secret_salt", String(64), nullable=True),
    Column("previous_secret_expires_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
)

# The event types an endpoint receives, one row each ("*" for every type): the statement that
# records events finds its subscribers by this primary key.
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("endpoint_id", Id, nullable=False),
    PrimaryKeyConstraint("tenant_id", "event_type", "endpoint_id"),
    Index(None, "tenant_id", "endpoint_id"),
)

DELIVERY_STATUSES = ("pending", "delivered", "dead", "skipped")

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("endpoint_id", Id, nullable=False),
    Column("event_id", Id, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("subject_type", String(32), nullable=False),
    Column("subject_id", Id, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),  # every attempt, numbering webhook_attempts
    Column("failures", Integer, nullable=False),  # in a row since created or replayed
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(300), nullable=True),
    # A worker that claimed the delivery, and until when (another may claim it after that).
    Column("claimed_by", String(40), nullable=True),
    Column("claimed_until", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "endpoint_id", "event_id"),
    # The workers' scan for what is due, across tenants.
    Index(None, "status", "next_attempt_at"),
    # The subject's older deliveries to the same endpoint, which hold a younger one back.
    Index(
        "ix_webhook_deliveries_subject_order",
        "tenant_id",
        "endpoint_id",
        "subject_type",
        "subject_id",
        "event_id",
    ),
    # The operators' lists, by endpoint or by status.
    Index(None, "tenant_id", "endpoint_id", "id"),
    Index(None, "tenant_id", "status", "id"),
    # The pruning of finished deliveries past their retention (migration 0013).
    Index(None, "status", "created_at"),
    CheckConstraint(
        "status IN ('pending', 'delivered', 'dead', 'skipped')",
        name="status",
    ),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("delivery_id", Id, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("attempted_at", UTCDateTime(), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", String(300), nullable=True),
    Column("succeeded", Boolean, nullable=False),
    PrimaryKeyConstraint("tenant_id", "delivery_id", "attempt"),
)
