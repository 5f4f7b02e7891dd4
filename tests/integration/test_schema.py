"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, update
from sqlalchemy.exc import IntegrityError

from shequn.context import Ctx
from shequn.db import Database
from shequn.ledger.rules import Purpose, member_account
from shequn.ledger.tables import accounts
from shequn.schema import all_metadata
from tests import factories as f

# Built by migration 0014 outside the declared tables: the copy library's FTS5 table on
# SQLite with the shadow tables FTS5 keeps for it, and its GIN expression index on PostgreSQL.
COPY_FTS_TABLES = frozenset(
    {"copy_entries_fts"}
    | {f"copy_entries_fts_{shadow}" for shadow in ("data", "idx", "content", "docsize", "config")}
)
COPY_FTS_INDEXES = frozenset({"ix_copy_entries_tokens_tsv"})


def _declared(name: str | None, type_: str, _parent: Any) -> bool:
    if type_ == "table":
        return name not in COPY_FTS_TABLES
    if type_ == "index":
        return name not in COPY_FTS_INDEXES
    return True


def _differences(db: Database) -> list[Any]:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": False,
                "include_name": _declared,
            },
        )
        return list(compare_metadata(context, all_metadata()))


def test_migrated_schema_matches_the_declared_tables(db: Database) -> None:
    assert _differences(db) == []


def test_every_table_is_keyed_by_tenant_first(db: Database) -> None:
    inspector = inspect(db.engine)
    tables = sorted(set(inspector.get_table_names()) - {"alembic_version"} - COPY_FTS_TABLES)
    assert tables == sorted(all_metadata().tables)
    for name in tables:
        primary = inspector.get_pk_constraint(name)["constrained_columns"]
        if name == "tenants":
            assert primary == ["tenant_id"]
        else:
            assert primary[0] == "tenant_id", name


def test_the_database_refuses_a_wallet_below_zero_and_debt_above_zero(ctx: Ctx) -> None:
    member = f.member(ctx)
    for purpose, bad in (
        (Purpose.WALLET_AVAILABLE, -1),
        (Purpose.WALLET_PENDING, -1),
        (Purpose.POINTS, -1),
        (Purpose.DEBT, 1),
    ):
        with pytest.raises(IntegrityError), ctx.db.transaction() as tx:
            tx.execute(
                update(accounts)
                .where(
                    accounts.c.tenant_id == ctx.tenant_id,
                    accounts.c.id == member_account(member, purpose),
                )
                .values(balance=bad)
            )
    with ctx.db.read() as tx:
        balances = tx.execute(
            select(accounts.c.balance).where(
                accounts.c.tenant_id == ctx.tenant_id, accounts.c.owner_id == member
            )
        ).scalars()
        assert sorted(balances) == [0, 0, 0, 0]
