from sqlalchemy import Column, Index, PrimaryKeyConstraint, String, Table

from shequn.db import Id, JsonType, UTCDateTime, metadata

events = Table(
    "events",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("type", String(64), nullable=False),
    Column("subject_type", String(32), nullable=False),
    Column("subject_id", Id, nullable=False),
    Column("actor", String(80), nullable=False),
    Column("payload", JsonType, nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    # The feed reads in id order (ids are time-ordered): the primary key serves it.
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "subject_type", "subject_id"),
    Index(None, "tenant_id", "type", "id"),
)
