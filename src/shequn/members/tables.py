from sqlalchemy import (
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    text,
)

from shequn.db import Fen, Id, UTCDateTime, metadata

members = Table(
    "members",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("name", String(80), nullable=False),
    Column("phone", String(20), nullable=True),
    Column("external_id", String(80), nullable=True),
    Column("tier_id", Id, nullable=True),
    # Referral binding: the first three ancestors are columns, so commission needs no walk.
    Column("referrer_id", Id, nullable=True),
    Column("ancestor_2", Id, nullable=True),
    Column("ancestor_3", Id, nullable=True),
    Column("binding_source", String(16), nullable=True),
    Column("bound_at", UTCDateTime(), nullable=True),
    # Team statistics, maintained set-based on every binding change.
    Column("direct_count", Integer, nullable=False, default=0),
    Column("team_count", Integer, nullable=False, default=0),
    # Purchase facts, maintained on payment and refund.
    Column("paid_order_count", Integer, nullable=False, default=0),  # less fully refunded ones
    Column("lifetime_order_count", Integer, nullable=False, default=0),  # never decreases
    Column("paid_total_fen", Fen, nullable=False, default=0),
    Column("max_order_fen", Fen, nullable=False, default=0),
    Column("first_paid_at", UTCDateTime(), nullable=True),
    Column("last_paid_at", UTCDateTime(), nullable=True),
    # Moved by the database on every update of the row (see shequn.migrations.triggers).
    Column("version", Integer, nullable=False, default=0, server_default=text("0")),
    Column("anonymised_at", UTCDateTime(), nullable=True),  # personal fields erased (PIPL)
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "phone"),
    UniqueConstraint("tenant_id", "external_id"),
    Index(None, "tenant_id", "referrer_id"),
    Index(None, "tenant_id", "tier_id"),
    Index(None, "tenant_id", "created_at"),
    # Every paid order rewrites the buyer's purchase facts (no indexed column among them): free
    # room in each page lets PostgreSQL do it in place.
    postgresql_with={"fillfactor": 90},
)

member_tags = Table(
    "member_tags",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("tag", String(40), nullable=False),
    PrimaryKeyConstraint("tenant_id", "member_id", "tag"),
    Index(None, "tenant_id", "tag"),
)
