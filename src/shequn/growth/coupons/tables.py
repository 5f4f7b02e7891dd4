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

from shequn.db import Fen, Id, JsonType, UTCDateTime, metadata

coupon_templates = Table(
    "coupon_templates",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("name", String(60), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount_off_fen", Fen, nullable=False),
    Column("percent_off_bp", Integer, nullable=False),
    Column("max_discount_fen", Fen, nullable=True),
    Column("min_spend_fen", Fen, nullable=False),
    Column("scope", String(16), nullable=False),
    Column("scope_values", JsonType, nullable=False),
    Column("valid_from", UTCDateTime(), nullable=True),
    Column("valid_until", UTCDateTime(), nullable=True),
    Column("valid_days", Integer, nullable=True),  # after issue
    Column("total_limit", Integer, nullable=True),
    Column("per_member_limit", Integer, nullable=False),
    Column("issued_count", Integer, nullable=False),
    Column("stack_with_tier_price", Boolean, nullable=False),
    Column("stack_with_points", Boolean, nullable=False),
    Column("restore_on_refund", Boolean, nullable=False),
    Column("claim_code", String(32), nullable=True),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "claim_code"),
    CheckConstraint("kind IN ('amount', 'percent')", name="kind"),
    CheckConstraint("total_limit IS NULL OR issued_count <= total_limit", name="total_limit"),
)

coupons = Table(
    "coupons",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("template_id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("status", String(16), nullable=False),
    Column("source", String(16), nullable=False),  # program | operator | code
    Column("source_ref", String(64), nullable=True),
    Column("valid_from", UTCDateTime(), nullable=False),
    Column("valid_until", UTCDateTime(), nullable=True),
    Column("order_id", Id, nullable=True),  # the order that uses it
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "member_id", "status"),
    Index(None, "tenant_id", "template_id", "member_id"),
    Index(None, "tenant_id", "order_id"),
    CheckConstraint("status IN ('available', 'used', 'void')", name="status"),
    CheckConstraint("(status = 'used') = (order_id IS NOT NULL)", name="used_by_order"),
)

# What each coupon and the points took off each line of an order (coupon_id "" for points).
order_discounts = Table(
    "order_discounts",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("order_id", Id, nullable=False),
    Column("line_id", Id, nullable=False),
    Column("kind", String(8), nullable=False),  # coupon | points
    Column("coupon_id", String(40), nullable=False),
    Column("amount_fen", Fen, nullable=False),
    PrimaryKeyConstraint("tenant_id", "order_id", "line_id", "kind", "coupon_id"),
    CheckConstraint("amount_fen > 0", name="amount"),
    CheckConstraint("kind IN ('coupon', 'points')", name="kind"),
)
