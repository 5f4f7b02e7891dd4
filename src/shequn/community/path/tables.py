"""The tenant's growth-path stages and each member's stage."""

from sqlalchemy import Column, Index, Integer, PrimaryKeyConstraint, String, Table

from shequn.db import Id, JsonType, UTCDateTime, metadata

growth_stages = Table(
    "growth_stages",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("position", Integer, nullable=False),  # 1 is the first stage
    Column("name", String(40), nullable=False),
    Column("criteria", JsonType, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "position"),
)

member_growth = Table(
    "member_growth",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("position", Integer, nullable=False),
    Column("stage", String(40), nullable=False),
    Column("entered_at", UTCDateTime(), nullable=False),
    Column("evaluated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "member_id"),
    Index(None, "tenant_id", "position"),
)
