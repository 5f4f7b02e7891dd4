"""a version on each tenant's settings and on each product

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Every change of a tenant's settings (a patch, a plan activated, a tier added or changed) adds
one to `tenant_settings.version`, and every change of a product (its fields or its tier prices)
to `products.version`, so that a process that keeps them can tell by one comparison whether
they are still current.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TABLES = ("tenant_settings", "products")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("0"))
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("version")
