"""tier criteria and privileges, tier history, repurchase intervals

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

A tier is reached by a tree of criteria (all-of / any-of over spend in a window, a single
order, a product bought, direct paying customers, team size, participation facts) instead of
four fixed columns, any one of which sufficed: each tier's columns become an any-of tree of
the same thresholds, so an existing database keeps its tiers' behaviour. Tiers gain a points
multiplier, service tags and an optional demotion (windowed, with a buffer and a hold period).
Products get a repurchase interval and reminder window; reminders sent are kept, so that an
order they brought back is told apart.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import shequn.db
from shequn.migrations import triggers

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = (
    "upgrade_spend_fen",
    "upgrade_single_order_fen",
    "upgrade_product_sku",
    "upgrade_team_headcount",
)
CHECKS = (
    ("points_multiplier", "points_multiplier_bp >= 0 AND points_multiplier_bp <= 100000"),
    ("demotion_mode", "demotion_mode IN ('never', 'windowed')"),
    ("demotion_buffer", "demotion_buffer_bp >= 5000 AND demotion_buffer_bp <= 10000"),
    ("demotion_hold", "demotion_hold_days >= 0"),
)

_tiers_before = sa.table(
    "tiers",
    sa.column("tenant_id", sa.String),
    sa.column("id", sa.String),
    *[sa.column(name) for name in OLD],
)
_tiers_after = sa.table(
    "tiers",
    sa.column("tenant_id", sa.String),
    sa.column("id", sa.String),
    sa.column("criteria", shequn.db.JsonType),
)


def _tree(row: Any) -> dict[str, Any] | None:
    """The four columns as the tree that means the same: any one of them suffices."""
    atoms: list[dict[str, Any]] = []
    if row.upgrade_spend_fen is not None:
        atoms.append({"kind": "spend", "min_fen": row.upgrade_spend_fen, "window_days": None})
    if row.upgrade_single_order_fen is not None:
        atoms.append(
            {"kind": "single_order", "min_fen": row.upgrade_single_order_fen, "window_days": None}
        )
    if row.upgrade_product_sku is not None:
        atoms.append({"kind": "bought", "sku": row.upgrade_product_sku, "window_days": None})
    if row.upgrade_team_headcount is not None:
        atoms.append({"kind": "team_size", "min_count": row.upgrade_team_headcount})
    if not atoms:
        return None
    return atoms[0] if len(atoms) == 1 else {"kind": "any_of", "of": atoms}


def _columns_of(tree: Any) -> dict[str, Any] | None:
    """The four columns a tree can be said with, or None if it cannot (a window, an all-of,
    two thresholds of one kind, a kind the columns do not have)."""
    items = tree["of"] if tree.get("kind") == "any_of" else [tree]
    out: dict[str, Any] = {}
    names = {
        "spend": ("upgrade_spend_fen", "min_fen"),
        "single_order": ("upgrade_single_order_fen", "min_fen"),
        "bought": ("upgrade_product_sku", "sku"),
        "team_size": ("upgrade_team_headcount", "min_count"),
    }
    for item in items:
        found = names.get(item.get("kind"))
        if found is None or item.get("window_days") is not None or found[0] in out:
            return None
        out[found[0]] = item[found[1]]
    return out


def upgrade() -> None:
    bind = op.get_bind()
    trees = {(r.tenant_id, r.id): _tree(r) for r in bind.execute(sa.select(_tiers_before)).all()}
    with triggers.suspended(bind):
        with op.batch_alter_table("tiers", schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "points_multiplier_bp",
                    sa.Integer(),
                    nullable=False,
                    server_default=sa.text("10000"),
                )
            )
            batch_op.add_column(
                sa.Column(
                    "service_tags",
                    shequn.db.JsonType,
                    nullable=False,
                    server_default=sa.text("'[]'"),
                )
            )
            batch_op.add_column(sa.Column("criteria", shequn.db.JsonType, nullable=True))
            batch_op.add_column(
                sa.Column(
                    "demotion_mode", sa.String(length=16), nullable=False, server_default="never"
                )
            )
            batch_op.add_column(
                sa.Column(
                    "demotion_buffer_bp",
                    sa.Integer(),
                    nullable=False,
                    server_default=sa.text("9000"),
                )
            )
            batch_op.add_column(
                sa.Column(
                    "demotion_hold_days", sa.Integer(), nullable=False, server_default=sa.text("0")
                )
            )
            for name, condition in CHECKS:
                batch_op.create_check_constraint(op.f(f"ck_tiers_{name}"), condition)
        for (tenant_id, tier_id), tree in trees.items():
            if tree is not None:
                bind.execute(
                    sa.update(_tiers_after)
                    .where(_tiers_after.c.tenant_id == tenant_id, _tiers_after.c.id == tier_id)
                    .values(criteria=tree)
                )
        with op.batch_alter_table("tiers", schema=None) as batch_op:
            for name in OLD:
                batch_op.drop_column(name)
    op.create_table(
        "repurchase_intervals",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("interval_days", sa.Integer(), nullable=True),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "interval_days IS NULL OR (interval_days >= 1 AND interval_days <= 3650)",
            name=op.f("ck_repurchase_intervals_interval"),
        ),
        sa.CheckConstraint(
            "window_days >= 1 AND window_days <= 365", name=op.f("ck_repurchase_intervals_window")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "sku", name=op.f("pk_repurchase_intervals")),
    )
    op.create_table(
        "repurchase_reminders",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("last_paid_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reminded_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("counts_until", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("task_id", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_repurchase_reminders")),
        sa.UniqueConstraint(
            "tenant_id",
            "member_id",
            "sku",
            "last_paid_at",
            name=op.f("uq_repurchase_reminders_tenant_id_member_id_sku_last_paid_at"),
        ),
    )
    op.create_index(
        op.f("ix_repurchase_reminders_tenant_id_reminded_at"),
        "repurchase_reminders",
        ["tenant_id", "reminded_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_repurchase_reminders_tenant_id_reminded_at"), table_name="repurchase_reminders"
    )
    op.drop_table("repurchase_reminders")
    op.drop_table("repurchase_intervals")
    bind = op.get_bind()
    trees = {(r.tenant_id, r.id): r.criteria for r in bind.execute(sa.select(_tiers_after)).all()}
    with triggers.suspended(bind):
        with op.batch_alter_table("tiers", schema=None) as batch_op:
            batch_op.add_column(sa.Column("upgrade_spend_fen", sa.BigInteger(), nullable=True))
            batch_op.add_column(
                sa.Column("upgrade_single_order_fen", sa.BigInteger(), nullable=True)
            )
            batch_op.add_column(
                sa.Column("upgrade_product_sku", sa.String(length=64), nullable=True)
            )
            batch_op.add_column(sa.Column("upgrade_team_headcount", sa.Integer(), nullable=True))
        for (tenant_id, tier_id), tree in trees.items():
            columns = None if tree is None else _columns_of(tree)
            if columns:
                bind.execute(
                    sa.update(_tiers_before)
                    .where(_tiers_before.c.tenant_id == tenant_id, _tiers_before.c.id == tier_id)
                    .values(**columns)
                )
        with op.batch_alter_table("tiers", schema=None) as batch_op:
            for name, _ in reversed(CHECKS):
                batch_op.drop_constraint(op.f(f"ck_tiers_{name}"), type_="check")
            for name in (
                "demotion_hold_days",
                "demotion_buffer_bp",
                "demotion_mode",
                "criteria",
                "service_tags",
                "points_multiplier_bp",
            ):
                batch_op.drop_column(name)
