"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from shequn.db import Database
from shequn.schema import all_metadata


def _differences(db: Database) -> list[Any]:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": False}
        )
        return list(compare_metadata(context, all_metadata()))


def test_migrated_schema_matches_the_declared_tables(db: Database) -> None:
    assert _differences(db) == []


def test_every_table_is_keyed_by_tenant_first(db: Database) -> None:
    inspector = inspect(db.engine)
    tables = sorted(set(inspector.get_table_names()) - {"alembic_version"})
    assert tables == sorted(all_metadata().tables)
    for name in tables:
        primary = inspector.get_pk_constraint(name)["constrained_columns"]
        if name == "tenants":
            assert primary == ["tenant_id"]
        else:
            assert primary[0] == "tenant_id", name
