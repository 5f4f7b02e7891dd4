from sqlalchemy import (
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

# An order not fully refunded (a free order counts as open): a full refund ends the order's
# way to completion and close, and takes it off the settlement's work lists.
OPEN_AMOUNT = "(refunded_fen < total_fen OR total_fen = 0)"
# Room in every page for the paid version of the orders written to it.
ORDERS_FILLFACTOR = 85

orders = Table(
    "orders",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("buyer_id", Id, nullable=False),
    Column("status", String(16), nullable=False),
    Column("subtotal_fen", Fen, nullable=False),  # at list prices
    Column("discount_fen", Fen, nullable=False),  # tier price
    Column("total_fen", Fen, nullable=False),  # amount due
    Column("paid_fen", Fen, nullable=False, default=0),
    Column("refunded_fen", Fen, nullable=False, default=0),
    Column("buyer_tier_id", Id, nullable=True),
    Column("attributed_sharer_id", Id, nullable=True),
    Column("idempotency_key", String(80), nullable=True),
    Column("request_hash", String(64), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("paid_at", UTCDateTime(), nullable=True),
    Column("shipped_at", UTCDateTime(), nullable=True),
    Column("completed_at", UTCDateTime(), nullable=True),
    Column("closed_at", UTCDateTime(), nullable=True),
    Column("cancelled_at", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "idempotency_key"),
    Index(None, "tenant_id", "buyer_id"),
    # The settlement's work lists. Neither index names the status or the payment columns, so
    # that paying an order changes no indexed column and PostgreSQL updates the row in place
    # (a heap-only update, on the free space the fill factor keeps in every page).
    Index(
        "ix_orders_awaiting_close",
        "tenant_id",
        "completed_at",
        postgresql_where=text(f"completed_at IS NOT NULL AND closed_at IS NULL AND {OPEN_AMOUNT}"),
        sqlite_where=text(f"completed_at IS NOT NULL AND closed_at IS NULL AND {OPEN_AMOUNT}"),
    ),
    Index(
        "ix_orders_awaiting_completion",
        "tenant_id",
        "shipped_at",
        postgresql_where=text(
            f"shipped_at IS NOT NULL AND completed_at IS NULL AND closed_at IS NULL"
            f" AND {OPEN_AMOUNT}"
        ),
        sqlite_where=text(
            f"shipped_at IS NOT NULL AND completed_at IS NULL AND closed_at IS NULL"
            f" AND {OPEN_AMOUNT}"
        ),
    ),
    CheckConstraint(
        "status IN ('created', 'paid', 'shipped', 'completed', 'closed', 'cancelled', 'refunded')",
        name="status",
    ),
    CheckConstraint("refunded_fen >= 0 AND refunded_fen <= paid_fen", name="refund_bound"),
    postgresql_with={"fillfactor": ORDERS_FILLFACTOR},
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("order_id", Id, nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("product_id", Id, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("name", String(120), nullable=False),
    Column("ladder_role", String(16), nullable=False),
    Column("category", String(40), nullable=True),
    Column("quantity", Integer, nullable=False),
    Column("list_price_fen", Fen, nullable=False),
    Column("unit_price_fen", Fen, nullable=False),
    Column("line_total_fen", Fen, nullable=False),
    Column("refunded_fen", Fen, nullable=False, default=0),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "order_id"),
    CheckConstraint("quantity > 0", name="quantity"),
    CheckConstraint("refunded_fen >= 0 AND refunded_fen <= line_total_fen", name="refund_bound"),
)

payments = Table(
    "payments",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("order_id", Id, nullable=False),
    Column("provider_txn_id", String(120), nullable=False),
    Column("amount_fen", Fen, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "provider_txn_id"),
    UniqueConstraint("tenant_id", "order_id"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("order_id", Id, nullable=False),
    Column("amount_fen", Fen, nullable=False),
    Column("reason", String(500), nullable=False),
    Column("phase", String(16), nullable=False),  # before_close | after_close
    Column("idempotency_key", String(80), nullable=True),
    Column("commission_cancelled_fen", Fen, nullable=False, default=0),
    Column("commission_reversed_fen", Fen, nullable=False, default=0),
    Column("actor", String(80), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "order_id"),
    UniqueConstraint("tenant_id", "order_id", "idempotency_key"),
    CheckConstraint("amount_fen > 0", name="amount"),
)

# How far the sweep of unpaid orders has gone: every order with a smaller id is paid or
# cancelled (or was being paid when the sweep passed it).
unpaid_sweeps = Table(
    "unpaid_sweeps",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("swept_until", Id, nullable=False),
    PrimaryKeyConstraint("tenant_id"),
)
