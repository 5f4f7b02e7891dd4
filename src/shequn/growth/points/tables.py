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

from shequn.db import Fen, Id, UTCDateTime, metadata

# Points as earned, each lot with what is left of it; the member's points account (ledger) is
# always the sum of `remaining` over its lots.
point_lots = Table(
    "point_lots",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("source", String(16), nullable=False),  # purchase | rule | sharing | manual
    Column("ref", String(80), nullable=False),  # what earned it (an order, a rule's event)
    Column("amount", Fen, nullable=False),
    Column("remaining", Fen, nullable=False),
    Column("expired", Fen, nullable=False),
    Column("earned_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "source", "ref", "member_id"),
    Index(None, "tenant_id", "member_id", "earned_at"),
    Index(None, "tenant_id", "expires_at"),
    CheckConstraint("amount > 0", name="amount"),
    CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining"),
)

# Which lots a spend (an order's discount, a redemption, a reversal) took points from, and how
# many of them were given back since.
point_spends = Table(
    "point_spends",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("purpose", String(16), nullable=False),  # order | redemption | reversal
    Column("ref", String(80), nullable=False),
    Column("lot_id", Id, nullable=False),
    Column("points", Fen, nullable=False),
    Column("restored", Fen, nullable=False),
    Column("spent_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "purpose", "ref"),
    CheckConstraint("points > 0 AND restored >= 0 AND restored <= points", name="points"),
)

redemption_items = Table(
    "redemption_items",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("name", String(60), nullable=False),
    Column("points", Integer, nullable=False),
    Column("stock", Integer, nullable=True),  # null: unlimited
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    CheckConstraint("points > 0", name="points"),
    CheckConstraint("stock IS NULL OR stock >= 0", name="stock"),
)

redemptions = Table(
    "redemptions",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("item_id", Id, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("points", Fen, nullable=False),
    Column("idempotency_key", String(80), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "member_id", "idempotency_key"),
    Index(None, "tenant_id", "member_id", "created_at"),
    CheckConstraint("quantity > 0 AND points > 0", name="amounts"),
)
