"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shequn.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=48), nullable=False),
        sa.Column("owner_type", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=24), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("tracks_balance", sa.Boolean(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "(purpose NOT IN ('wallet_available', 'wallet_pending', 'points') OR balance >= 0)"
            " AND (purpose <> 'debt' OR balance <= 0)",
            name=op.f("ck_accounts_balance_sign"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_accounts")),
        sa.UniqueConstraint(
            "tenant_id",
            "owner_type",
            "owner_id",
            "purpose",
            "currency",
            name=op.f("uq_accounts_tenant_id_owner_type_owner_id_purpose_currency"),
        ),
    )
    op.create_table(
        "api_keys",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('owner', 'operator', 'readonly')", name=op.f("ck_api_keys_role")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "commission_lines",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("order_line_id", sa.String(length=40), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=False),
        sa.Column("beneficiary_id", sa.String(length=40), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        sa.Column("base_fen", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("cancelled_fen", sa.BigInteger(), nullable=False),
        sa.Column("reversed_fen", sa.BigInteger(), nullable=False),
        sa.Column("withdrawn_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("released_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'available', 'withdrawn', 'cancelled', 'reversed')",
            name=op.f("ck_commission_lines_status"),
        ),
        sa.CheckConstraint(
            "amount_fen > 0 AND cancelled_fen + reversed_fen <= amount_fen",
            name=op.f("ck_commission_lines_amounts"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_commission_lines")),
    )
    with op.batch_alter_table("commission_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_commission_lines_tenant_id_beneficiary_id_status"),
            ["tenant_id", "beneficiary_id", "status"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_commission_lines_tenant_id_order_id"),
            ["tenant_id", "order_id"],
            unique=False,
        )

    op.create_table(
        "commission_plans",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("peer_bonus_bp", sa.Integer(), nullable=False),
        sa.Column("signup_reward_fen", sa.BigInteger(), nullable=False),
        sa.Column("qualification_sku", sa.String(length=64), nullable=True),
        sa.Column("team_volume_bonus_bp", sa.Integer(), nullable=False),
        sa.Column("release", sa.String(length=16), nullable=False),
        sa.Column(
            "tier_rates",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("activated_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("retired_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'retired')", name=op.f("ck_commission_plans_status")
        ),
        sa.CheckConstraint("depth >= 1 AND depth <= 3", name=op.f("ck_commission_plans_depth")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_commission_plans")),
        sa.UniqueConstraint(
            "tenant_id", "version", name=op.f("uq_commission_plans_tenant_id_version")
        ),
    )
    op.create_table(
        "commission_rules",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        sa.Column("fixed_fen", sa.BigInteger(), nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("scope_value", sa.String(length=64), nullable=True),
        sa.Column(
            "tier_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.CheckConstraint("level >= 1 AND level <= 3", name=op.f("ck_commission_rules_level")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_commission_rules")),
    )
    with op.batch_alter_table("commission_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_commission_rules_tenant_id_plan_id"),
            ["tenant_id", "plan_id"],
            unique=False,
        )

    op.create_table(
        "events",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("occurred_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_events_tenant_id_subject_type_subject_id"),
            ["tenant_id", "subject_type", "subject_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_events_tenant_id_type_id"),
            ["tenant_id", "type", "id"],
            unique=False,
        )

    op.create_table(
        "journal_transactions",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("ref_type", sa.String(length=24), nullable=False),
        sa.Column("ref_id", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_journal_transactions")),
    )
    with op.batch_alter_table("journal_transactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_journal_transactions_tenant_id_ref_type_ref_id"),
            ["tenant_id", "ref_type", "ref_id"],
            unique=False,
        )

    op.create_table(
        "member_tags",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "member_id", "tag", name=op.f("pk_member_tags")),
    )
    with op.batch_alter_table("member_tags", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_member_tags_tenant_id_tag"), ["tenant_id", "tag"], unique=False
        )

    op.create_table(
        "members",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("external_id", sa.String(length=80), nullable=True),
        sa.Column("tier_id", sa.String(length=40), nullable=True),
        sa.Column("referrer_id", sa.String(length=40), nullable=True),
        sa.Column("ancestor_2", sa.String(length=40), nullable=True),
        sa.Column("ancestor_3", sa.String(length=40), nullable=True),
        sa.Column("binding_source", sa.String(length=16), nullable=True),
        sa.Column("bound_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("direct_count", sa.Integer(), nullable=False),
        sa.Column("team_count", sa.Integer(), nullable=False),
        sa.Column("paid_order_count", sa.Integer(), nullable=False),
        sa.Column("lifetime_order_count", sa.Integer(), nullable=False),
        sa.Column("paid_total_fen", sa.BigInteger(), nullable=False),
        sa.Column("max_order_fen", sa.BigInteger(), nullable=False),
        sa.Column("referred_buyer_count", sa.Integer(), nullable=False),
        sa.Column("first_paid_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_paid_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_members")),
        sa.UniqueConstraint(
            "tenant_id", "external_id", name=op.f("uq_members_tenant_id_external_id")
        ),
        sa.UniqueConstraint("tenant_id", "phone", name=op.f("uq_members_tenant_id_phone")),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_members_tenant_id_created_at"), ["tenant_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_members_tenant_id_referrer_id"),
            ["tenant_id", "referrer_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_members_tenant_id_tier_id"), ["tenant_id", "tier_id"], unique=False
        )

    op.create_table(
        "order_lines",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("ladder_role", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("list_price_fen", sa.BigInteger(), nullable=False),
        sa.Column("unit_price_fen", sa.BigInteger(), nullable=False),
        sa.Column("line_total_fen", sa.BigInteger(), nullable=False),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_lines_quantity")),
        sa.CheckConstraint(
            "refunded_fen >= 0 AND refunded_fen <= line_total_fen",
            name=op.f("ck_order_lines_refund_bound"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_order_lines")),
    )
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_lines_tenant_id_order_id"), ["tenant_id", "order_id"], unique=False
        )

    op.create_table(
        "orders",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("buyer_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("subtotal_fen", sa.BigInteger(), nullable=False),
        sa.Column("discount_fen", sa.BigInteger(), nullable=False),
        sa.Column("total_fen", sa.BigInteger(), nullable=False),
        sa.Column("paid_fen", sa.BigInteger(), nullable=False),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False),
        sa.Column("buyer_tier_id", sa.String(length=40), nullable=True),
        sa.Column("attributed_sharer_id", sa.String(length=40), nullable=True),
        sa.Column("idempotency_key", sa.String(length=80), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paid_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("shipped_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('created', 'paid', 'shipped', 'completed', 'closed', 'cancelled', 'refunded')",
            name=op.f("ck_orders_status"),
        ),
        sa.CheckConstraint(
            "refunded_fen >= 0 AND refunded_fen <= paid_fen", name=op.f("ck_orders_refund_bound")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_orders")),
        sa.UniqueConstraint(
            "tenant_id", "idempotency_key", name=op.f("uq_orders_tenant_id_idempotency_key")
        ),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_orders_tenant_id_buyer_id"), ["tenant_id", "buyer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_orders_tenant_id_status_completed_at"),
            ["tenant_id", "status", "completed_at"],
            unique=False,
        )

    op.create_table(
        "payments",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("provider_txn_id", sa.String(length=120), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_payments")),
        sa.UniqueConstraint("tenant_id", "order_id", name=op.f("uq_payments_tenant_id_order_id")),
        sa.UniqueConstraint(
            "tenant_id", "provider_txn_id", name=op.f("uq_payments_tenant_id_provider_txn_id")
        ),
    )
    op.create_table(
        "postings",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("transaction_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=48), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_postings_nonzero")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_postings")),
    )
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_postings_tenant_id_account_id"),
            ["tenant_id", "account_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_postings_tenant_id_transaction_id"),
            ["tenant_id", "transaction_id"],
            unique=False,
        )

    op.create_table(
        "product_tier_prices",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("tier_id", sa.String(length=40), nullable=False),
        sa.Column("member_price_fen", sa.BigInteger(), nullable=True),
        sa.Column("wholesale_price_fen", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint(
            "tenant_id", "product_id", "tier_id", name=op.f("pk_product_tier_prices")
        ),
    )
    op.create_table(
        "products",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.Column("ladder_role", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "ladder_role IN ('bait', 'core', 'partner')", name=op.f("ck_products_ladder_role")
        ),
        sa.CheckConstraint("price_fen >= 0", name=op.f("ck_products_price")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_products")),
        sa.UniqueConstraint("tenant_id", "sku", name=op.f("uq_products_tenant_id_sku")),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_products_tenant_id_category"), ["tenant_id", "category"], unique=False
        )

    op.create_table(
        "referral_bindings",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("referrer_id", sa.String(length=40), nullable=True),
        sa.Column("previous_referrer_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("occurred_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_referral_bindings")),
    )
    with op.batch_alter_table("referral_bindings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_bindings_tenant_id_member_id_occurred_at"),
            ["tenant_id", "member_id", "occurred_at"],
            unique=False,
        )

    op.create_table(
        "referral_paths",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("ancestor_id", sa.String(length=40), nullable=False),
        sa.Column("descendant_id", sa.String(length=40), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "ancestor_id", "descendant_id", name=op.f("pk_referral_paths")
        ),
    )
    with op.batch_alter_table("referral_paths", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_paths_tenant_id_ancestor_id_depth"),
            ["tenant_id", "ancestor_id", "depth"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_referral_paths_tenant_id_descendant_id_depth"),
            ["tenant_id", "descendant_id", "depth"],
            unique=False,
        )

    op.create_table(
        "referral_touches",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("sharer_id", sa.String(length=40), nullable=False),
        sa.Column("visitor_key", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("scene", sa.String(length=64), nullable=True),
        sa.Column("touched_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_referral_touches")),
    )
    with op.batch_alter_table("referral_touches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_touches_tenant_id_visitor_key_touched_at"),
            ["tenant_id", "visitor_key", "touched_at"],
            unique=False,
        )

    op.create_table(
        "refunds",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=True),
        sa.Column("commission_cancelled_fen", sa.BigInteger(), nullable=False),
        sa.Column("commission_reversed_fen", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_refunds_amount")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_refunds")),
        sa.UniqueConstraint(
            "tenant_id",
            "order_id",
            "idempotency_key",
            name=op.f("uq_refunds_tenant_id_order_id_idempotency_key"),
        ),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_refunds_tenant_id_order_id"), ["tenant_id", "order_id"], unique=False
        )

    op.create_table(
        "tenant_settings",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("after_sales_days", sa.Integer(), nullable=False),
        sa.Column("auto_complete_days", sa.Integer(), nullable=False),
        sa.Column("compliance_profile", sa.String(length=16), nullable=False),
        sa.Column("custom_commission_cap_bp", sa.Integer(), nullable=False),
        sa.Column("binding_mode", sa.String(length=16), nullable=False),
        sa.Column("binding_window_days", sa.Integer(), nullable=False),
        sa.Column("binding_trigger", sa.String(length=24), nullable=False),
        sa.Column("binding_protection_days", sa.Integer(), nullable=False),
        sa.Column("withdrawal_min_fen", sa.BigInteger(), nullable=False),
        sa.Column("withdrawal_fee_bp", sa.Integer(), nullable=False),
        sa.Column("withdrawal_auto_approve_max_fen", sa.BigInteger(), nullable=False),
        sa.Column(
            "stage_criteria",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("active_plan_id", sa.String(length=40), nullable=True),
        sa.Column("tiers_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenant_settings")),
    )
    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenants")),
    )
    op.create_table(
        "tiers",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("discount_bp", sa.Integer(), nullable=False),
        sa.Column("may_distribute", sa.Boolean(), nullable=False),
        sa.Column("upgrade_spend_fen", sa.BigInteger(), nullable=True),
        sa.Column("upgrade_single_order_fen", sa.BigInteger(), nullable=True),
        sa.Column("upgrade_product_sku", sa.String(length=64), nullable=True),
        sa.Column("upgrade_team_headcount", sa.Integer(), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "discount_bp >= 0 AND discount_bp <= 10000", name=op.f("ck_tiers_discount")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_tiers")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_tiers_tenant_id_name")),
        sa.UniqueConstraint("tenant_id", "rank", name=op.f("uq_tiers_tenant_id_rank")),
    )
    op.create_table(
        "withdrawal_allocations",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("withdrawal_id", sa.String(length=40), nullable=False),
        sa.Column("commission_line_id", sa.String(length=40), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "withdrawal_id",
            "commission_line_id",
            name=op.f("pk_withdrawal_allocations"),
        ),
    )
    with op.batch_alter_table("withdrawal_allocations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_withdrawal_allocations_tenant_id_commission_line_id"),
            ["tenant_id", "commission_line_id"],
            unique=False,
        )

    op.create_table(
        "withdrawals",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("fee_fen", sa.BigInteger(), nullable=False),
        sa.Column("net_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payout_id", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=True),
        sa.Column("provider_ref", sa.String(length=120), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("decided_by", sa.String(length=80), nullable=True),
        sa.Column("requested_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("approved_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('requested', 'approved', 'paid', 'rejected', 'failed')",
            name=op.f("ck_withdrawals_status"),
        ),
        sa.CheckConstraint(
            "amount_fen > 0 AND fee_fen >= 0 AND net_fen > 0", name=op.f("ck_withdrawals_amounts")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_withdrawals")),
        sa.UniqueConstraint(
            "tenant_id",
            "member_id",
            "idempotency_key",
            name=op.f("uq_withdrawals_tenant_id_member_id_idempotency_key"),
        ),
        sa.UniqueConstraint(
            "tenant_id", "payout_id", name=op.f("uq_withdrawals_tenant_id_payout_id")
        ),
    )
    with op.batch_alter_table("withdrawals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_withdrawals_tenant_id_member_id_requested_at"),
            ["tenant_id", "member_id", "requested_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_withdrawals_tenant_id_status_requested_at"),
            ["tenant_id", "status", "requested_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("withdrawals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_withdrawals_tenant_id_status_requested_at"))
        batch_op.drop_index(batch_op.f("ix_withdrawals_tenant_id_member_id_requested_at"))

    op.drop_table("withdrawals")
    with op.batch_alter_table("withdrawal_allocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_withdrawal_allocations_tenant_id_commission_line_id"))

    op.drop_table("withdrawal_allocations")
    op.drop_table("tiers")
    op.drop_table("tenants")
    op.drop_table("tenant_settings")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refunds_tenant_id_order_id"))

    op.drop_table("refunds")
    with op.batch_alter_table("referral_touches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_touches_tenant_id_visitor_key_touched_at"))

    op.drop_table("referral_touches")
    with op.batch_alter_table("referral_paths", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_paths_tenant_id_descendant_id_depth"))
        batch_op.drop_index(batch_op.f("ix_referral_paths_tenant_id_ancestor_id_depth"))

    op.drop_table("referral_paths")
    with op.batch_alter_table("referral_bindings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_bindings_tenant_id_member_id_occurred_at"))

    op.drop_table("referral_bindings")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_products_tenant_id_category"))

    op.drop_table("products")
    op.drop_table("product_tier_prices")
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_postings_tenant_id_transaction_id"))
        batch_op.drop_index(batch_op.f("ix_postings_tenant_id_account_id"))

    op.drop_table("postings")
    op.drop_table("payments")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_tenant_id_status_completed_at"))
        batch_op.drop_index(batch_op.f("ix_orders_tenant_id_buyer_id"))

    op.drop_table("orders")
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_lines_tenant_id_order_id"))

    op.drop_table("order_lines")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_members_tenant_id_tier_id"))
        batch_op.drop_index(batch_op.f("ix_members_tenant_id_referrer_id"))
        batch_op.drop_index(batch_op.f("ix_members_tenant_id_created_at"))

    op.drop_table("members")
    with op.batch_alter_table("member_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_tags_tenant_id_tag"))

    op.drop_table("member_tags")
    with op.batch_alter_table("journal_transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journal_transactions_tenant_id_ref_type_ref_id"))

    op.drop_table("journal_transactions")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_tenant_id_type_id"))
        batch_op.drop_index(batch_op.f("ix_events_tenant_id_subject_type_subject_id"))

    op.drop_table("events")
    with op.batch_alter_table("commission_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commission_rules_tenant_id_plan_id"))

    op.drop_table("commission_rules")
    op.drop_table("commission_plans")
    with op.batch_alter_table("commission_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commission_lines_tenant_id_order_id"))
        batch_op.drop_index(batch_op.f("ix_commission_lines_tenant_id_beneficiary_id_status"))

    op.drop_table("commission_lines")
    op.drop_table("api_keys")
    op.drop_table("accounts")
