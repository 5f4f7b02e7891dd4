"""frozen wallets are read from their postings

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

A member's frozen (pending) wallet no longer keeps a cached balance: paying an order then writes
no row of the uplines'. Its balance is the sum of its postings, as it always was in the ledger.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE accounts SET tracks_balance = false, balance = 0 WHERE purpose = 'wallet_pending'"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE accounts SET tracks_balance = true, balance = COALESCE("
        "(SELECT SUM(p.amount) FROM postings p"
        " WHERE p.tenant_id = accounts.tenant_id AND p.account_id = accounts.id), 0)"
        " WHERE purpose = 'wallet_pending'"
    )
