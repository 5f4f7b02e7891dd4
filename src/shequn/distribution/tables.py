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

commission_plans = Table(
    "commission_plans",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("version", Integer, nullable=False),
    Column("name", String(80), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("depth", Integer, nullable=False),
    Column("peer_bonus_bp", Integer, nullable=False, default=0),
    Column("signup_reward_fen", Fen, nullable=False, default=0),
    Column("qualification_sku", String(64), nullable=True),
    Column("team_volume_bonus_bp", Integer, nullable=False, default=0),
    Column("release", String(16), nullable=False, default="on_close"),
    Column("tier_rates", JsonType, nullable=False),  # {tier_id: rate_bp} for differential mode
    Column("status", String(16), nullable=False),
    Column("created_by", String(80), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("activated_at", UTCDateTime(), nullable=True),
    Column("retired_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "version"),
    CheckConstraint("depth >= 1 AND depth <= 3", name="depth"),
    CheckConstraint("status IN ('draft', 'active', 'retired')", name="status"),
)

commission_rules = Table(
    "commission_rules",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("plan_id", Id, nullable=False),
    Column("level", Integer, nullable=False),
    Column("rate_bp", Integer, nullable=False, default=0),
    Column("fixed_fen", Fen, nullable=False, default=0),
    Column("scope_kind", String(16), nullable=False, default="all"),
    Column("scope_value", String(64), nullable=True),
    Column("tier_ids", JsonType, nullable=True),  # null: any member may earn at this level
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "plan_id"),
    CheckConstraint("level >= 1 AND level <= 3", name="level"),
)

COMMISSION_STATUSES = ("pending", "available", "withdrawn", "cancelled", "reversed")

commission_lines = Table(
    "commission_lines",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("order_id", Id, nullable=False),
    Column("order_line_id", Id, nullable=False),
    Column("plan_id", Id, nullable=False),
    Column("beneficiary_id", Id, nullable=False),
    Column("level", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("rate_bp", Integer, nullable=False),
    Column("base_fen", Fen, nullable=False),
    Column("amount_fen", Fen, nullable=False),
    Column("cancelled_fen", Fen, nullable=False, default=0),
    Column("reversed_fen", Fen, nullable=False, default=0),
    Column("withdrawn_fen", Fen, nullable=False, default=0),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("released_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "order_id"),
    Index(None, "tenant_id", "beneficiary_id", "status"),
    CheckConstraint(
        "status IN (" + ", ".join(f"'{s}'" for s in COMMISSION_STATUSES) + ")", name="status"
    ),
    CheckConstraint(
        "amount_fen > 0 AND cancelled_fen + reversed_fen <= amount_fen", name="amounts"
    ),
    # Never drawn on for more than it pays. A reversal after the money was drawn (a refund after
    # close) is not subtracted here: what was paid out then becomes the member's debt.
    CheckConstraint(
        "withdrawn_fen >= 0 AND withdrawn_fen <= amount_fen - cancelled_fen", name="withdrawn"
    ),
)

# Which commission lines a withdrawal drew on, oldest first, so a line can show `withdrawn`.
withdrawal_allocations = Table(
    "withdrawal_allocations",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("withdrawal_id", Id, nullable=False),
    Column("commission_line_id", Id, nullable=False),
    Column("amount_fen", Fen, nullable=False),
    PrimaryKeyConstraint("tenant_id", "withdrawal_id", "commission_line_id"),
    Index(None, "tenant_id", "commission_line_id"),
)
