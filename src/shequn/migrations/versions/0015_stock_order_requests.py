"""stock orders awaiting payment

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05

A stock order an agent asks for from the portal, with the amount it has to pay; it becomes a
stock order when its payment is confirmed (by the payment provider or by an operator).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shequn.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stock_order_requests",
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
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("expires_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("provider_txn_id", sa.String(length=120), nullable=True),
        sa.Column("stock_order_id", sa.String(length=40), nullable=True),
        sa.Column("paid_by", sa.String(length=120), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paid_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount_fen >= 0", name=op.f("ck_stock_order_requests_amount")),
        sa.CheckConstraint(
            "status IN ('awaiting_payment', 'paid', 'cancelled', 'expired')",
            name=op.f("ck_stock_order_requests_status"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_stock_order_requests")),
    )
    op.create_index(
        op.f("ix_stock_order_requests_tenant_id_member_id_created_at"),
        "stock_order_requests",
        ["tenant_id", "member_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_stock_order_requests_tenant_id_status_id"),
        "stock_order_requests",
        ["tenant_id", "status", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("stock_order_requests")
