"""share links and channel codes, sharing programs, coupons, points, fraud holds, agent stock

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

The growth tables; the ledger's currencies widened to name a product (an agent's stock is
counted in a currency per product), and an agent's stock account, like a wallet, never below
zero.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shequn.db
from shequn.migrations import triggers

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "coupon_templates",
    "coupons",
    "growth_cursors",
    "growth_processed",
    "growth_settings",
    "holds",
    "identity_signals",
    "order_discounts",
    "point_lots",
    "point_spends",
    "redemption_items",
    "redemptions",
    "share_clicks",
    "share_links",
    "sharing_programs",
    "sharing_rewards",
    "stock_buybacks",
    "stock_lots",
    "stock_orders",
)

OLD_SIGN = (
    "(purpose NOT IN ('wallet_available', 'wallet_pending', 'points') OR balance >= 0)"
    " AND (purpose <> 'debt' OR balance <= 0)"
)
NEW_SIGN = (
    "(purpose NOT IN ('wallet_available', 'wallet_pending', 'points', 'stock')"
    " OR balance >= 0)"
    " AND (purpose <> 'debt' OR balance <= 0)"
)


def _ledger(currency_length: int, sign: str) -> None:
    with triggers.suspended(op.get_bind()):
        with op.batch_alter_table("accounts", schema=None) as batch_op:
            batch_op.alter_column(
                "currency",
                existing_type=sa.String(),
                type_=sa.String(length=currency_length),
                existing_nullable=False,
            )
            batch_op.drop_constraint(op.f("ck_accounts_balance_sign"), type_="check")
            batch_op.create_check_constraint(op.f("ck_accounts_balance_sign"), sign)
        with op.batch_alter_table("postings", schema=None) as batch_op:
            batch_op.alter_column(
                "currency",
                existing_type=sa.String(),
                type_=sa.String(length=currency_length),
                existing_nullable=False,
            )


def upgrade() -> None:
    _ledger(40, NEW_SIGN)
    op.create_table(
        "coupon_templates",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_off_fen", sa.BigInteger(), nullable=False),
        sa.Column("percent_off_bp", sa.Integer(), nullable=False),
        sa.Column("max_discount_fen", sa.BigInteger(), nullable=True),
        sa.Column("min_spend_fen", sa.BigInteger(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column(
            "scope_values",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("valid_from", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_until", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("total_limit", sa.Integer(), nullable=True),
        sa.Column("per_member_limit", sa.Integer(), nullable=False),
        sa.Column("issued_count", sa.Integer(), nullable=False),
        sa.Column("stack_with_tier_price", sa.Boolean(), nullable=False),
        sa.Column("stack_with_points", sa.Boolean(), nullable=False),
        sa.Column("restore_on_refund", sa.Boolean(), nullable=False),
        sa.Column("claim_code", sa.String(length=32), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('amount', 'percent')", name=op.f("ck_coupon_templates_kind")),
        sa.CheckConstraint(
            "total_limit IS NULL OR issued_count <= total_limit",
            name=op.f("ck_coupon_templates_total_limit"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_coupon_templates")),
        sa.UniqueConstraint(
            "tenant_id", "claim_code", name=op.f("uq_coupon_templates_tenant_id_claim_code")
        ),
    )
    op.create_table(
        "coupons",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("template_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_ref", sa.String(length=64), nullable=True),
        sa.Column("valid_from", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_until", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("issued_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(status = 'used') = (order_id IS NOT NULL)", name=op.f("ck_coupons_used_by_order")
        ),
        sa.CheckConstraint(
            "status IN ('available', 'used', 'void')", name=op.f("ck_coupons_status")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_coupons")),
    )
    op.create_index(
        op.f("ix_coupons_tenant_id_member_id_status"),
        "coupons",
        ["tenant_id", "member_id", "status"],
        unique=False,
    )
    op.create_index(
        op.f("ix_coupons_tenant_id_order_id"), "coupons", ["tenant_id", "order_id"], unique=False
    )
    op.create_index(
        op.f("ix_coupons_tenant_id_template_id_member_id"),
        "coupons",
        ["tenant_id", "template_id", "member_id"],
        unique=False,
    )
    op.create_table(
        "growth_cursors",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("after_event_id", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_growth_cursors")),
    )
    op.create_table(
        "growth_processed",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("processed_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "event_id", name=op.f("pk_growth_processed")),
    )
    op.create_table(
        "growth_settings",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column(
            "share_url_templates",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("short_link_base", sa.String(length=200), nullable=False),
        sa.Column("points_earn_bp", sa.Integer(), nullable=False),
        sa.Column("fen_per_point", sa.Integer(), nullable=False),
        sa.Column("points_cap_bp", sa.Integer(), nullable=False),
        sa.Column("points_expiry_days", sa.Integer(), nullable=False),
        sa.Column(
            "points_rules",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("stock_cover_limit_days", sa.Integer(), nullable=False),
        sa.Column("new_agent_monthly_sales", sa.Integer(), nullable=False),
        sa.Column("buyback_window_days", sa.Integer(), nullable=False),
        sa.Column("buyback_price_bp", sa.Integer(), nullable=False),
        sa.Column("min_first_stock_order_fen", sa.BigInteger(), nullable=False),
        sa.Column("velocity_limit_per_hour", sa.Integer(), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_growth_settings")),
    )
    op.create_table(
        "holds",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("buyer_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=80), nullable=True),
        sa.Column("decision_reason", sa.String(length=500), nullable=True),
        sa.Column("released_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('commission', 'reward')", name=op.f("ck_holds_kind")),
        sa.CheckConstraint(
            "status IN ('held', 'released', 'cancelled')", name=op.f("ck_holds_status")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_holds")),
        sa.UniqueConstraint(
            "tenant_id", "kind", "subject_id", name=op.f("uq_holds_tenant_id_kind_subject_id")
        ),
    )
    op.create_index(
        op.f("ix_holds_tenant_id_member_id"), "holds", ["tenant_id", "member_id"], unique=False
    )
    op.create_index(
        op.f("ix_holds_tenant_id_status_created_at"),
        "holds",
        ["tenant_id", "status", "created_at"],
        unique=False,
    )
    op.create_table(
        "identity_signals",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("phone_print", sa.String(length=40), nullable=True),
        sa.Column("device_print", sa.String(length=40), nullable=True),
        sa.Column("address_print", sa.String(length=40), nullable=True),
        sa.Column("payment_print", sa.String(length=40), nullable=True),
        sa.Column("seen_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('registration', 'order', 'login')", name=op.f("ck_identity_signals_kind")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_identity_signals")),
    )
    op.create_index(
        op.f("ix_identity_signals_tenant_id_address_print_seen_at"),
        "identity_signals",
        ["tenant_id", "address_print", "seen_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_identity_signals_tenant_id_device_print_seen_at"),
        "identity_signals",
        ["tenant_id", "device_print", "seen_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_identity_signals_tenant_id_member_id"),
        "identity_signals",
        ["tenant_id", "member_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_identity_signals_tenant_id_payment_print"),
        "identity_signals",
        ["tenant_id", "payment_print"],
        unique=False,
    )
    op.create_index(
        op.f("ix_identity_signals_tenant_id_phone_print"),
        "identity_signals",
        ["tenant_id", "phone_print"],
        unique=False,
    )
    op.create_table(
        "order_discounts",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("line_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("coupon_id", sa.String(length=40), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kind IN ('coupon', 'points')", name=op.f("ck_order_discounts_kind")),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_order_discounts_amount")),
        sa.PrimaryKeyConstraint(
            "tenant_id", "order_id", "line_id", "kind", "coupon_id", name=op.f("pk_order_discounts")
        ),
    )
    op.create_table(
        "point_lots",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=80), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("expired", sa.BigInteger(), nullable=False),
        sa.Column("earned_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_point_lots_amount")),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= amount", name=op.f("ck_point_lots_remaining")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_point_lots")),
        sa.UniqueConstraint(
            "tenant_id",
            "source",
            "ref",
            "member_id",
            name=op.f("uq_point_lots_tenant_id_source_ref_member_id"),
        ),
    )
    op.create_index(
        op.f("ix_point_lots_tenant_id_expires_at"),
        "point_lots",
        ["tenant_id", "expires_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_point_lots_tenant_id_member_id_earned_at"),
        "point_lots",
        ["tenant_id", "member_id", "earned_at"],
        unique=False,
    )
    op.create_table(
        "point_spends",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=80), nullable=False),
        sa.Column("lot_id", sa.String(length=40), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("restored", sa.BigInteger(), nullable=False),
        sa.Column("spent_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "points > 0 AND restored >= 0 AND restored <= points",
            name=op.f("ck_point_spends_points"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_point_spends")),
    )
    op.create_index(
        op.f("ix_point_spends_tenant_id_purpose_ref"),
        "point_spends",
        ["tenant_id", "purpose", "ref"],
        unique=False,
    )
    op.create_table(
        "redemption_items",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("points > 0", name=op.f("ck_redemption_items_points")),
        sa.CheckConstraint("stock IS NULL OR stock >= 0", name=op.f("ck_redemption_items_stock")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_redemption_items")),
    )
    op.create_table(
        "redemptions",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("item_id", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0 AND points > 0", name=op.f("ck_redemptions_amounts")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_redemptions")),
        sa.UniqueConstraint(
            "tenant_id",
            "member_id",
            "idempotency_key",
            name=op.f("uq_redemptions_tenant_id_member_id_idempotency_key"),
        ),
    )
    op.create_index(
        op.f("ix_redemptions_tenant_id_member_id_created_at"),
        "redemptions",
        ["tenant_id", "member_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "share_clicks",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("visitor", sa.String(length=40), nullable=False),
        sa.Column("clicked_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "code", "visitor", name=op.f("pk_share_clicks")),
    )
    op.create_table(
        "share_links",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("target_type", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "code", name=op.f("pk_share_links")),
        sa.UniqueConstraint("code", name=op.f("uq_share_links_code")),
        sa.UniqueConstraint(
            "tenant_id",
            "member_id",
            "target_type",
            "target_id",
            "state",
            name=op.f("uq_share_links_tenant_id_member_id_target_type_target_id_state"),
        ),
    )
    op.create_table(
        "sharing_programs",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("sharer_reward", sa.String(length=16), nullable=False),
        sa.Column("cashback_bp", sa.Integer(), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("points", sa.Integer(), nullable=True),
        sa.Column("coupon_template_id", sa.String(length=40), nullable=True),
        sa.Column("tier_id", sa.String(length=40), nullable=True),
        sa.Column("new_customer_coupon_template_id", sa.String(length=40), nullable=True),
        sa.Column("first_order_only", sa.Boolean(), nullable=False),
        sa.Column(
            "target_skus",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("cap_per_day", sa.Integer(), nullable=True),
        sa.Column("cap_per_month", sa.Integer(), nullable=True),
        sa.Column("starts_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "sharer_reward IN ('cashback', 'fixed', 'coupon', 'points', 'tier_upgrade')",
            name=op.f("ck_sharing_programs_sharer_reward"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_sharing_programs")),
    )
    op.create_table(
        "sharing_rewards",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("buyer_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("base_fen", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("coupon_id", sa.String(length=40), nullable=True),
        sa.Column("tier_id", sa.String(length=40), nullable=True),
        sa.Column("previous_tier_id", sa.String(length=40), nullable=True),
        sa.Column("reversed_fen", sa.BigInteger(), nullable=False),
        sa.Column("reversed_points", sa.BigInteger(), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("granted_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('granted', 'held', 'capped', 'cancelled', 'reversed')",
            name=op.f("ck_sharing_rewards_status"),
        ),
        sa.CheckConstraint(
            "reversed_fen >= 0 AND reversed_fen <= amount_fen AND reversed_points >= 0 AND reversed_points <= points",
            name=op.f("ck_sharing_rewards_reversed"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_sharing_rewards")),
        sa.UniqueConstraint(
            "tenant_id",
            "program_id",
            "order_id",
            "role",
            name=op.f("uq_sharing_rewards_tenant_id_program_id_order_id_role"),
        ),
    )
    op.create_index(
        op.f("ix_sharing_rewards_tenant_id_member_id_program_id_created_at"),
        "sharing_rewards",
        ["tenant_id", "member_id", "program_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_sharing_rewards_tenant_id_order_id"),
        "sharing_rewards",
        ["tenant_id", "order_id"],
        unique=False,
    )
    op.create_table(
        "stock_buybacks",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "quantity > 0 AND amount_fen >= 0", name=op.f("ck_stock_buybacks_amounts")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_stock_buybacks")),
    )
    op.create_index(
        op.f("ix_stock_buybacks_tenant_id_member_id_created_at"),
        "stock_buybacks",
        ["tenant_id", "member_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "stock_lots",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("stock_order_id", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_cost_fen", sa.BigInteger(), nullable=False),
        sa.Column("purchased_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "quantity > 0 AND unit_cost_fen >= 0", name=op.f("ck_stock_lots_amounts")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_stock_lots")),
    )
    op.create_index(
        op.f("ix_stock_lots_tenant_id_member_id_product_id_purchased_at"),
        "stock_lots",
        ["tenant_id", "member_id", "product_id", "purchased_at"],
        unique=False,
    )
    op.create_table(
        "stock_orders",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("tier_id", sa.String(length=40), nullable=False),
        sa.Column(
            "lines",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("provider_txn_id", sa.String(length=120), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_fen >= 0", name=op.f("ck_stock_orders_amount")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_stock_orders")),
        sa.UniqueConstraint(
            "tenant_id", "provider_txn_id", name=op.f("uq_stock_orders_tenant_id_provider_txn_id")
        ),
    )
    op.create_index(
        op.f("ix_stock_orders_tenant_id_member_id_created_at"),
        "stock_orders",
        ["tenant_id", "member_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
    op.execute("DELETE FROM accounts WHERE purpose = 'stock'")
    op.execute("DELETE FROM postings WHERE length(currency) > 8")
    _ledger(8, OLD_SIGN)
