"""Migration 0009 on both databases: the four upgrade columns of an existing database become
criteria trees that mean the same (a member reaches the tier as before), and the downgrade
brings back the columns of every tree they can say."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.flows.tiers import list_tiers
from shequn.members.service import get_member
from shequn.schema import alembic_config, upgrade_database
from shequn.tenancy.service import create_tenant
from tests import factories as f

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own, empty, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    admin: str = request.getfixturevalue("pg_server")
    name = f"shequn_migrate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _old_tier(
    conn: sa.Connection, tenant_id: str, tier_id: str, rank: int, **columns: object
) -> None:
    values = {
        "tenant_id": tenant_id,
        "id": tier_id,
        "name": tier_id,
        "rank": rank,
        "discount_bp": 500,
        "may_distribute": True,
        "upgrade_spend_fen": None,
        "upgrade_single_order_fen": None,
        "upgrade_product_sku": None,
        "upgrade_team_headcount": None,
        "created_at": CREATED,
        **columns,
    }
    table = sa.table("tiers", *[sa.column(k) for k in values])
    conn.execute(sa.insert(table).values(values))


def test_the_old_columns_become_trees_that_mean_the_same(empty_url: str) -> None:
    from alembic import command

    upgrade_database(empty_url, "0008")
    db = Database.from_url(empty_url)
    clock = ManualClock()
    try:
        tenant_id, _ = create_tenant(db=db, clock=clock, name="老库")
        with db.engine.begin() as conn:
            _old_tier(conn, tenant_id, "tier_spend", 1, upgrade_spend_fen=25_000)
            _old_tier(
                conn,
                tenant_id,
                "tier_any",
                2,
                upgrade_single_order_fen=90_000,
                upgrade_product_sku="PKG-1",
                upgrade_team_headcount=30,
            )
            _old_tier(conn, tenant_id, "tier_hand", 3)
        db.dispose()
        upgrade_database(empty_url)
        db = Database.from_url(empty_url)
        ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="test")
        tiers = {t["id"]: t for t in list_tiers(ctx)}
        assert tiers["tier_spend"]["criteria"] == {
            "kind": "spend",
            "min_fen": 25_000,
            "window_days": None,
        }
        assert tiers["tier_any"]["criteria"] == {
            "kind": "any_of",
            "of": [
                {"kind": "single_order", "min_fen": 90_000, "window_days": None},
                {"kind": "bought", "sku": "PKG-1", "window_days": None},
                {"kind": "team_size", "min_count": 30},
            ],
        }
        assert tiers["tier_hand"]["criteria"] is None
        assert {t["privileges"]["points_multiplier_bp"] for t in tiers.values()} == {10_000}
        assert {t["demotion"]["mode"] for t in tiers.values()} == {"never"}
        # and members reach them as they did: by spend, or by any one of the three
        f.product(ctx, sku="CORE-1", price_fen=10_000)
        f.product(ctx, sku="PKG-1", price_fen=99_900, ladder_role="partner")
        spender, packager = f.member(ctx), f.member(ctx)
        for _ in range(3):
            f.paid_order(ctx, spender)
        f.paid_order(ctx, packager, sku="PKG-1")
        assert get_member(ctx, member_id=spender)["tier_id"] == "tier_spend"
        assert get_member(ctx, member_id=packager)["tier_id"] == "tier_any"
        # a tier changed since: a tree the columns cannot say loses its criteria on the way back
        with db.engine.begin() as conn:
            trees = sa.table(
                "tiers", sa.column("tenant_id"), sa.column("id"), sa.column("criteria", sa.JSON)
            )
            conn.execute(
                sa.update(trees)
                .where(trees.c.id == "tier_spend")
                .values(criteria={"kind": "spend", "min_fen": 25_000, "window_days": 365})
            )
        db.dispose()
        command.downgrade(alembic_config(empty_url), "0008")
        db = Database.from_url(empty_url)
        with db.read() as tx:
            rows = tx.execute(
                sa.text(
                    "SELECT id, upgrade_spend_fen, upgrade_single_order_fen, upgrade_product_sku,"
                    " upgrade_team_headcount FROM tiers WHERE tenant_id = :t ORDER BY rank"
                ),
                {"t": tenant_id},
            ).all()
            columns = {c["name"] for c in sa.inspect(tx).get_columns("tiers")}
        assert [tuple(r) for r in rows] == [
            ("tier_spend", None, None, None, None),
            ("tier_any", None, 90_000, "PKG-1", 30),
            ("tier_hand", None, None, None, None),
        ]
        assert "criteria" not in columns
        assert "repurchase_intervals" not in sa.inspect(db.engine).get_table_names()
        db.dispose()
        upgrade_database(empty_url)  # and up again
    finally:
        db.dispose()
