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

# A stock order an agent asked for and has still to pay (or paid: then `stock_order_id` is the
# stock order it became, in the same transaction as the payment). Its lines carry the prices
# quoted when it was asked for; `status` is awaiting_payment, paid, cancelled or expired.
stock_order_requests = Table(
    "stock_order_requests",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("tier_id", Id, nullable=False),
    Column("lines", JsonType, nullable=False),  # [{sku, product_id, name, quantity, unit_cost_fen}]
    Column("amount_fen", Fen, nullable=False),
    Column("status", String(20), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("provider_txn_id", String(120), nullable=True),
    Column("stock_order_id", Id, nullable=True),
    Column("paid_by", String(120), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("paid_at", UTCDateTime(), nullable=True),
    Column("cancelled_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "member_id", "created_at"),
    Index(None, "tenant_id", "status", "id"),
    CheckConstraint("amount_fen >= 0", name="amount"),
    CheckConstraint(
        "status IN ('awaiting_payment', 'paid', 'cancelled', 'expired')", name="status"
    ),
)
