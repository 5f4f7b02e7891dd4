"""settlement work lists that leave the payment columns unindexed

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Paying an order used to change an indexed column (the status, in the settlement's index), so
PostgreSQL wrote a new index entry in every index of `orders` for each payment. The settlement
now finds its orders through two partial indexes on timestamps, which paying never touches, and
`orders` and `members` keep free room in their pages for in-place updates.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_AMOUNT = "(refunded_fen < total_fen OR total_fen = 0)"
AWAITING_CLOSE = f"completed_at IS NOT NULL AND closed_at IS NULL AND {OPEN_AMOUNT}"
AWAITING_COMPLETION = (
    f"shipped_at IS NOT NULL AND completed_at IS NULL AND closed_at IS NULL AND {OPEN_AMOUNT}"
)


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_tenant_id_status_completed_at")
        batch_op.create_index(
            "ix_orders_awaiting_close",
            ["tenant_id", "completed_at"],
            unique=False,
            postgresql_where=sa.text(AWAITING_CLOSE),
            sqlite_where=sa.text(AWAITING_CLOSE),
        )
        batch_op.create_index(
            "ix_orders_awaiting_completion",
            ["tenant_id", "shipped_at"],
            unique=False,
            postgresql_where=sa.text(AWAITING_COMPLETION),
            sqlite_where=sa.text(AWAITING_COMPLETION),
        )
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE orders SET (fillfactor = 85)")
        op.execute("ALTER TABLE members SET (fillfactor = 90)")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE orders RESET (fillfactor)")
        op.execute("ALTER TABLE members RESET (fillfactor)")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_awaiting_completion")
        batch_op.drop_index("ix_orders_awaiting_close")
        batch_op.create_index(
            "ix_orders_tenant_id_status_completed_at",
            ["tenant_id", "status", "completed_at"],
            unique=False,
        )
