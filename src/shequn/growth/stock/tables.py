from sqlalchemy import (
    CheckConstraint,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from shequn.db import Fen, Id, JsonType, UTCDateTime, metadata

# A paid stock order of an agent (its units are in its stock accounts, its lots below).
stock_orders = Table(
    "stock_orders",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("tier_id", Id, nullable=False),
    Column("lines", JsonType, nullable=False),  # [{sku, product_id, quantity, unit_cost_fen}]
    Column("amount_fen", Fen, nullable=False),
    Column("provider_txn_id", String(120), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "provider_txn_id"),
    Index(None, "tenant_id", "member_id", "created_at"),
    CheckConstraint("amount_fen >= 0", name="amount"),
)

# Each purchase of units of one product, with what a unit cost: the cost basis of the stock,
# and what a buyback pays.
stock_lots = Table(
    "stock_lots",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("product_id", Id, nullable=False),
    Column("stock_order_id", Id, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_cost_fen", Fen, nullable=False),
    Column("purchased_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "member_id", "product_id", "purchased_at"),
    CheckConstraint("quantity > 0 AND unit_cost_fen >= 0", name="amounts"),
)

stock_buybacks = Table(
    "stock_buybacks",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("product_id", Id, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("amount_fen", Fen, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "member_id", "created_at"),
    CheckConstraint("quantity > 0 AND amount_fen >= 0", name="amounts"),
)
