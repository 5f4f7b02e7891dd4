"""Alerts of community operations (low activity, oversize, slow replies, crises)."""

from sqlalchemy import Column, Index, PrimaryKeyConstraint, String, Table, UniqueConstraint

from shequn.db import Id, JsonType, UTCDateTime, metadata

community_alerts = Table(
    "community_alerts",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("kind", String(16), nullable=False),
    # One open alert per subject and kind: the key is freed when it is resolved.
    Column("dedupe_key", String(120), nullable=False),
    Column("subject_type", String(16), nullable=False),
    Column("subject_id", String(80), nullable=False),
    Column("status", String(12), nullable=False),  # open, resolved
    Column("details", JsonType, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "dedupe_key"),
    Index(None, "tenant_id", "status", "created_at"),
)
