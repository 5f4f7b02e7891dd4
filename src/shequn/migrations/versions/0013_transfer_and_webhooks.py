"""imports, exports and webhook endpoints' safety

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04

What imports, exports and webhook endpoints keep beyond their first tables: an index by
which finished webhook deliveries past their retention are found and pruned.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_webhook_deliveries_status_created_at"),
        "webhook_deliveries",
        ["status", "created_at"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_deliveries_status_created_at"), table_name="webhook_deliveries")
