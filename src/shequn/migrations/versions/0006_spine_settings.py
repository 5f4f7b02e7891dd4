"""tenant time zone, unpaid-order cancellation, daily withdrawal limits, anonymised members

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

Each tenant gets its time zone (its days and months are local there), a time after which an
unpaid order is cancelled, and per-member daily limits beyond which withdrawals wait for an
operator; a member may be anonymised (its personal fields erased, its ledger and tree kept).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shequn.migrations import triggers

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


COLUMNS = (
    ("withdrawal_daily_count_max", sa.Integer(), "3"),
    ("withdrawal_daily_amount_max_fen", sa.BigInteger(), "500000"),
    ("unpaid_cancel_minutes", sa.Integer(), "30"),
    ("time_zone", sa.String(length=64), "'Asia/Shanghai'"),
)


def upgrade() -> None:
    with triggers.suspended(op.get_bind()):
        with op.batch_alter_table("tenant_settings", schema=None) as batch_op:
            for name, kind, default in COLUMNS:
                batch_op.add_column(
                    sa.Column(name, kind, nullable=False, server_default=sa.text(default))
                )
        with op.batch_alter_table("members", schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=True)
            )
    op.create_table(
        "unpaid_sweeps",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("swept_until", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_unpaid_sweeps")),
    )


def downgrade() -> None:
    op.drop_table("unpaid_sweeps")
    with triggers.suspended(op.get_bind()):
        with op.batch_alter_table("members", schema=None) as batch_op:
            batch_op.drop_column("anonymised_at")
        with op.batch_alter_table("tenant_settings", schema=None) as batch_op:
            for name, _, _ in reversed(COLUMNS):
                batch_op.drop_column(name)
