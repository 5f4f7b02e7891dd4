"""Migration 0008 on both databases: it creates the community tables, its downgrade removes
exactly them, and the upgrade after it works again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command

from shequn.community import tables
from shequn.schema import alembic_config, upgrade_database

COMMUNITY_TABLES = sorted(t.name for t in vars(tables).values() if isinstance(t, sa.Table))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own, empty, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'community-migrate.db'}"
        return
    admin: str = request.getfixturevalue("pg_server")
    name = f"shequn_community_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_the_community_migration_goes_up_down_and_up(empty_url: str) -> None:
    upgrade_database(empty_url, "0008")
    assert set(COMMUNITY_TABLES) <= _tables(empty_url)
    command.downgrade(alembic_config(empty_url), "0007")
    assert set(COMMUNITY_TABLES) & _tables(empty_url) == set()
    upgrade_database(empty_url)
    assert set(COMMUNITY_TABLES) <= _tables(empty_url)
    assert len(COMMUNITY_TABLES) == 18
