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

sharing_programs = Table(
    "sharing_programs",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("name", String(60), nullable=False),
    Column("sharer_reward", String(16), nullable=False),
    Column("cashback_bp", Integer, nullable=True),
    Column("amount_fen", Fen, nullable=True),
    Column("points", Integer, nullable=True),
    Column("coupon_template_id", Id, nullable=True),
    Column("tier_id", Id, nullable=True),
    Column("new_customer_coupon_template_id", Id, nullable=True),
    Column("first_order_only", Boolean, nullable=False),
    Column("target_skus", JsonType, nullable=False),
    Column("cap_per_day", Integer, nullable=True),
    Column("cap_per_month", Integer, nullable=True),
    Column("starts_at", UTCDateTime(), nullable=True),
    Column("ends_at", UTCDateTime(), nullable=True),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    CheckConstraint(
        "sharer_reward IN ('cashback', 'fixed', 'coupon', 'points', 'tier_upgrade')",
        name="sharer_reward",
    ),
)

# One reward per program, order and role (the sharer's, the new customer's).
sharing_rewards = Table(
    "sharing_rewards",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("program_id", Id, nullable=False),
    Column("order_id", Id, nullable=False),
    Column("role", String(16), nullable=False),  # sharer | new_customer
    Column("member_id", Id, nullable=False),
    Column("buyer_id", Id, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("base_fen", Fen, nullable=False),  # what the order had paid, net, when it closed
    Column("amount_fen", Fen, nullable=False),
    Column("points", Fen, nullable=False),
    Column("coupon_id", Id, nullable=True),
    Column("tier_id", Id, nullable=True),
    Column("previous_tier_id", Id, nullable=True),
    Column("reversed_fen", Fen, nullable=False),
    Column("reversed_points", Fen, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("granted_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "program_id", "order_id", "role"),
    Index(None, "tenant_id", "member_id", "program_id", "created_at"),
    Index(None, "tenant_id", "order_id"),
    CheckConstraint(
        "status IN ('granted', 'held', 'capped', 'cancelled', 'reversed')", name="status"
    ),
    CheckConstraint(
        "reversed_fen >= 0 AND reversed_fen <= amount_fen"
        " AND reversed_points >= 0 AND reversed_points <= points",
        name="reversed",
    ),
)
