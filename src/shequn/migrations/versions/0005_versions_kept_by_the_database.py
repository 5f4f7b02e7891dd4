"""versions kept by the database, plans that never change, no frozen wallet below zero

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Triggers now move `version` on every update of a tenant's settings, a product (its tier prices
included) and a member, and `tiers_version` on every change of a tier, so that a process that
keeps a copy of one of them can tell by one comparison whether it is still current, whichever
code wrote the change; they refuse any change of a commission plan's rules once written, and a
posting that would leave a frozen wallet below zero. A commission line can never be drawn on
for more than it pays. A member's count of referred buyers is counted when it is read instead of
being kept on the row: a payment then writes no row of the buyer's referrer.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shequn.migrations import triggers

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WITHDRAWN_BOUND = "withdrawn_fen >= 0 AND withdrawn_fen <= amount_fen - cancelled_fen"


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.drop_column("referred_buyer_count")
    with op.batch_alter_table("commission_lines", schema=None) as batch_op:
        batch_op.create_check_constraint("withdrawn", WITHDRAWN_BOUND)
    triggers.install(op.get_bind())


def downgrade() -> None:
    triggers.remove(op.get_bind())
    with op.batch_alter_table("commission_lines", schema=None) as batch_op:
        batch_op.drop_constraint("ck_commission_lines_withdrawn", type_="check")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "referred_buyer_count", sa.Integer(), nullable=False, server_default=sa.text("0")
            )
        )
        batch_op.drop_column("version")
