"""What the community's use cases share: inserts that keep the row already there, id lists
sent as one parameter, and rows shown without their tenant."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import Connection, Row, Table, any_, bindparam, func, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ColumnElement
from sqlalchemy.types import String
from sqlalchemy.util import await_only

from shequn.jsoncodec import dumps_json

_BASE32 = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud and typed by people


def random_code(length: int) -> str:
    """A random code of upper-case letters and digits that are not confused with each other."""
    raw = os.urandom(length)
    return "".join(_BASE32[b % len(_BASE32)] for b in raw)


def copy_rows(
    tx: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Append many new rows to `table` in the caller's transaction with PostgreSQL's COPY
    (what bulk work writes: no statement to plan, no JSON to build and parse); an INSERT of
    all of them elsewhere. The rows must be new: a key already there fails the transaction.
    Times are written as they are given (aware)."""
    if not rows:
        return
    if tx.dialect.name != "postgresql":
        tx.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    raw = tx.connection.driver_connection
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    if isinstance(raw, psycopg.AsyncConnection):
        # a use case run by `Database.run`: in a greenlet over the asynchronous driver
        await_only(_copy_async(raw, statement, rows))
        return
    assert isinstance(raw, psycopg.Connection)
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


async def _copy_async(
    raw: psycopg.AsyncConnection[Any], statement: str, rows: Sequence[Sequence[Any]]
) -> None:
    async with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            await copy.write_row(row)


def insert_ignoring(tx: Connection, table: Table, conflict: Sequence[str]) -> Any:
    """An INSERT that keeps the row already holding the same `conflict` key (ON CONFLICT DO
    NOTHING on both databases)."""
    dialect = postgresql if tx.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(conflict))


def dialect_insert(tx: Connection, table: Table) -> Any:
    """The database's own INSERT, for an ON CONFLICT … DO UPDATE the caller writes."""
    dialect = postgresql if tx.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def earliest(tx: Connection, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.least(a, b) if tx.dialect.name == "postgresql" else func.min(a, b)


def latest(tx: Connection, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.greatest(a, b) if tx.dialect.name == "postgresql" else func.max(a, b)


def ids_in(tx: Connection, column: ColumnElement[Any], ids: Sequence[str]) -> ColumnElement[bool]:
    """`column IN ids` with the list as one parameter, however long it is (a JSON array read
    by the database), so that the statement text is the same for any number of ids. On
    PostgreSQL the array is built once (an init plan) and matched with `= ANY`, which an index
    scan takes as it is; a correlated `IN (SELECT …)` could be planned as a scan of the whole
    list per row."""
    text = dumps_json(list(ids))
    if tx.dialect.name == "postgresql":
        param = bindparam("ids", text, type_=String, unique=True).cast(postgresql.JSONB)
        listed = select(func.jsonb_array_elements_text(param).column_valued("value"))
        values = func.array(listed.scalar_subquery())
        return column == any_(values)
    each = func.json_each(bindparam("ids", text, type_=String, unique=True)).table_valued("value")
    return column.in_(select(each.c.value).scalar_subquery())


def rows_for_ids(
    tx: Connection,
    table: Table,
    key: str,
    ids: Sequence[str],
    columns: Sequence[str],
    *where: ColumnElement[bool],
) -> list[Any]:
    """The rows of `table` whose `key` is one of `ids` (any number of them, one parameter),
    with the `columns` asked for. Each id is looked up by itself (a lateral join on
    PostgreSQL), so the cost follows the number of ids whatever the planner believes of the
    table: a table filled moments ago by the same bulk work still has the statistics of an
    empty one, and a plan made for those compares every row with every id."""
    if not ids:
        return []
    text = dumps_json(list(ids))
    if tx.dialect.name == "postgresql":
        param = bindparam("ids", text, type_=String, unique=True).cast(postgresql.JSONB)
        wanted = func.jsonb_array_elements_text(param).table_valued("value").alias("wanted")
        found = (
            select(*(table.c[c] for c in columns))
            .where(table.c[key] == wanted.c.value, *where)
            .lateral("found")
        )
        return list(tx.execute(select(found).select_from(wanted).join(found, true())).all())
    each = func.json_each(bindparam("ids", text, type_=String, unique=True)).table_valued("value")
    query = select(*(table.c[c] for c in columns)).where(
        table.c[key].in_(select(each.c.value).scalar_subquery()), *where
    )
    return list(tx.execute(query).all())


def view(row: Row[Any] | dict[str, Any], *, drop: Sequence[str] = ()) -> dict[str, Any]:
    """A row as an answer: every column but the tenant's (and those in `drop`)."""
    mapping = row if isinstance(row, dict) else dict(row._mapping)
    return {k: v for k, v in mapping.items() if k != "tenant_id" and k not in drop}


def local_day(at: datetime, time_zone: str) -> str:
    """The tenant's local date of `at`, as YYYY-MM-DD."""
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(time_zone)).date().isoformat()


def local_minute(at: datetime, time_zone: str) -> int:
    from zoneinfo import ZoneInfo

    local = at.astimezone(ZoneInfo(time_zone))
    return local.hour * 60 + local.minute
