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
    text,
)

from shequn.db import Fen, Id, UTCDateTime, metadata

products = Table(
    "products",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("name", String(120), nullable=False),
    Column("price_fen", Fen, nullable=False),
    Column("ladder_role", String(16), nullable=False),
    Column("category", String(40), nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # Bumped on every change of the product or of its tier prices, so that a process can tell
    # whether a product it read earlier is still current.
    Column("version", Integer, nullable=False, default=0, server_default=text("0")),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "sku"),
    Index(None, "tenant_id", "category"),
    CheckConstraint("price_fen >= 0", name="price"),
    CheckConstraint("ladder_role IN ('bait', 'core', 'partner')", name="ladder_role"),
)

product_tier_prices = Table(
    "product_tier_prices",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("product_id", Id, nullable=False),
    Column("tier_id", Id, nullable=False),
    Column("member_price_fen", Fen, nullable=True),
    Column("wholesale_price_fen", Fen, nullable=True),
    PrimaryKeyConstraint("tenant_id", "product_id", "tier_id"),
)
