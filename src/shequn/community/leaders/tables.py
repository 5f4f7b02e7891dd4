"""Featured role models (leaderboards are read from the facts themselves)."""

from sqlalchemy import Boolean, Column, Index, PrimaryKeyConstraint, String, Table

from shequn.db import Id, UTCDateTime, metadata

role_models = Table(
    "role_models",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("community_id", Id, nullable=True),
    Column("title", String(80), nullable=False),
    Column("story", String(2000), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("featured_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "member_id"),
)
