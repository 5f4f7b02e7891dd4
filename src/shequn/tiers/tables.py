from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from shequn.db import Fen, Id, UTCDateTime, metadata

tiers = Table(
    "tiers",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("name", String(40), nullable=False),
    Column("rank", Integer, nullable=False),  # higher is more senior
    Column("discount_bp", Integer, nullable=False, default=0),  # member-price discount
    Column("may_distribute", Boolean, nullable=False, default=False),
    # Upgrade criteria, any one of which suffices (null = not used).
    Column("upgrade_spend_fen", Fen, nullable=True),
    Column("upgrade_single_order_fen", Fen, nullable=True),
    Column("upgrade_product_sku", String(64), nullable=True),
    Column("upgrade_team_headcount", Integer, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "rank"),
    UniqueConstraint("tenant_id", "name"),
    CheckConstraint("discount_bp >= 0 AND discount_bp <= 10000", name="discount"),
)
