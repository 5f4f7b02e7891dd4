"""Writes collected while a use case runs and sent together just before it commits.

A paid order writes a dozen rows over seven tables. Sent one statement each, the statements
themselves cost more than the rows: on PostgreSQL every statement is a round trip, a parse of
its parameters and an executor start, and in the application every statement is a trip through
SQLAlchemy and the driver. A `WriteBatch` gathers the inserts and keyed updates of a use case
and sends them

- on PostgreSQL as one statement: each operation is a data-modifying CTE whose rows arrive as
  one JSON parameter read with the table's own row type (`json_populate_recordset`), so the
  statement text depends only on which tables and columns are written, never on how many rows,
  and the server prepares and plans it once (arrays cost more to adapt in the driver than the
  rows cost to write);
- on SQLite (in process, where a statement costs little) as one `executemany` per operation.

The batch only writes. A use case reads what it needs first and flushes at the end; nothing it
flushes is read back by it. Every statement of a flush sees the database as it was before the
flush, so a batch never touches the same row twice (`update` refuses a key it already holds).

A batch can also be conditional, for a use case that reads without locking and writes in one
statement (an optimistic write): `require` names rows that must still hold the values the use
case read, and locks them; `check` compares a row without locking it; `guard` names the one
update the rest depends on (an order that must still be unpaid). If a condition fails or the
guard matches nothing, the flush writes nothing at all and says so.

Locks, since the sub-statements of one PostgreSQL statement run in no guaranteed order: each
condition is written so that it can only be evaluated once the one before it has held (it
depends on its result), the guard only once every condition has, and the writes only once the
guard (or the last condition) has. So the conditions lock their rows in the order they were
added, and the guard's row after them. The other updates of a batch lock their rows in no
defined order: a use case updates in a batch only rows it holds already (through a condition,
the guard, or `shequn.locks` before the flush).

An insert may be followed by a derived insert (`Derived`): an `INSERT … SELECT` computed in the
database from the rows that insert writes, joined with other tables (the webhook deliveries of
the events just recorded, one per subscribed endpoint). On PostgreSQL it is one more
sub-statement reading the insert's `RETURNING`, so it writes only what the insert wrote (nothing
when the batch does not apply); on SQLite it runs right after the insert and reads the inserted
rows back by their primary key. A derived insert takes no lock: it reads tables the flush does
not write, and inserts new rows.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    Insert,
    Table,
    bindparam,
    column,
    insert,
    literal,
    select,
    table,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import FromClause

from shequn.db import UTCDateTime
from shequn.jsoncodec import NaiveDatetimeError, dumps_json

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


class BatchError(ValueError):
    """A batch was given rows it cannot write (a programming error, never user input)."""


@dataclass(frozen=True, eq=False)
class Derived:
    """An `INSERT … SELECT` that follows an insert of the same flush: `build` is given the
    rows that insert writes, as a relation with the columns `reads` of its table, and returns
    the insert (whose literals are rendered into the statement text, so it takes no bound
    parameters). `name` tells derived inserts apart in the statement cache."""

    name: str
    reads: tuple[str, ...]
    build: Callable[[FromClause], Insert]


@dataclass
class _Insert:
    table: Table
    columns: tuple[str, ...]
    then: Derived | None = None
    rows: list[Mapping[str, Any]] = field(default_factory=list)


@dataclass
class _Update:
    table: Table
    keys: tuple[str, ...]
    values: tuple[str, ...]
    increments: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass(frozen=True)
class _Require:
    """A row that must exist with `equal` still holding (null-safe), locked while checked
    unless it is only `check`ed."""

    table: Table
    key: tuple[tuple[str, Any], ...]
    equal: tuple[tuple[str, Any], ...]
    lock: bool = True
    returning: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Guard:
    """The update of one row the rest of the batch depends on."""

    table: Table
    key: tuple[tuple[str, Any], ...]
    where: tuple[tuple[str, Any], ...]
    values: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Flushed:
    """What a flush did: whether it took effect (always, without a guard) and how many rows
    each `update` matched, in the order the updates were first added; and, if it took effect,
    the columns each `check` with `returning` read, in the order the checks were added."""

    applied: bool
    matched: list[int]
    returned: list[dict[str, Any]] = field(default_factory=list)


_Op = _Insert | _Update


class WriteBatch:
    """Inserts and keyed updates, flushed in one statement on PostgreSQL."""

    def __init__(self) -> None:
        self._ops: list[_Op] = []
        self._inserts: dict[tuple[str, tuple[str, ...], Derived | None], _Insert] = {}
        self._updates: dict[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], _Update]
        self._updates = {}
        self._updated_keys: set[tuple[str, tuple[Any, ...]]] = set()
        self._requires: list[_Require] = []
        self._guard: _Guard | None = None

    def __bool__(self) -> bool:
        return bool(self._ops) or self._guard is not None

    def insert(
        self, table: Table, rows: Sequence[Mapping[str, Any]], *, then: Derived | None = None
    ) -> None:
        """Insert rows; every row names the same columns. `then` is a derived insert that
        follows these rows (they must name their primary key and the columns it reads)."""
        if not rows:
            return
        columns = tuple(rows[0])
        op = self._inserts.get((table.name, columns, then))
        if op is None:
            _time_positions(table, columns)  # refuses an unknown column
            if then is not None and not (
                _primary_key_columns(table) | set(then.reads) <= set(columns)
            ):
                raise BatchError(f"rows for {table.name} lack what {then.name} reads")
            op = _Insert(table, columns, then)
            self._inserts[(table.name, columns, then)] = op
            self._ops.append(op)
        names = _column_set(columns)
        for row in rows:
            if row.keys() != names:
                raise BatchError(f"rows for {table.name} name different columns")
        op.rows.extend(rows)

    def update(
        self,
        table: Table,
        key: Mapping[str, Any],
        *,
        values: Mapping[str, Any] | None = None,
        increments: Mapping[str, int] | None = None,
    ) -> None:
        """Set `values` and add `increments` on the one row whose primary key is `key`."""
        values = values or {}
        increments = increments or {}
        key_columns = _primary_key(table, key)
        if not values and not increments:
            raise BatchError("an update changes at least one column")
        if set(values) & set(increments):
            raise BatchError("a column is either set or incremented")
        self._claim(table, key, key_columns)
        shape = (table.name, key_columns, tuple(values), tuple(increments))
        op = self._updates.get(shape)
        if op is None:
            _time_positions(table, key_columns + tuple(values) + tuple(increments))
            op = _Update(table, key_columns, tuple(values), tuple(increments))
            self._updates[shape] = op
            self._ops.append(op)
        op.rows.append(
            tuple(key[c] for c in key_columns)
            + tuple(values[c] for c in op.values)
            + tuple(increments[c] for c in op.increments)
        )

    def require(self, table: Table, key: Mapping[str, Any], *, equal: Mapping[str, Any]) -> None:
        """The row whose primary key is `key` must exist with these column values (None is
        matched as null); it is locked until the transaction ends. Without a `guard`, the batch
        takes effect if every `require` and `check` holds."""
        self._condition(table, key, equal, lock=True, returning=())

    def check(
        self,
        table: Table,
        key: Mapping[str, Any],
        *,
        equal: Mapping[str, Any],
        returning: Sequence[str] = (),
    ) -> None:
        """Like `require`, without the lock: the row is compared as the statement finds it
        (for a row many writers depend on and few change, such as a tenant's settings, whose
        lock would queue them all). The `returning` columns of the row, as the statement read
        it, come back in `Flushed.returned`."""
        self._condition(table, key, equal, lock=False, returning=tuple(returning))

    def _condition(
        self,
        table: Table,
        key: Mapping[str, Any],
        equal: Mapping[str, Any],
        *,
        lock: bool,
        returning: tuple[str, ...],
    ) -> None:
        key_columns = _primary_key(table, key)
        _time_positions(table, key_columns + tuple(equal) + returning)
        self._requires.append(
            _Require(
                table,
                tuple((c, key[c]) for c in key_columns),
                tuple(equal.items()),
                lock=lock,
                returning=returning,
            )
        )

    def guard(
        self,
        table: Table,
        key: Mapping[str, Any],
        *,
        where: Mapping[str, Any],
        values: Mapping[str, Any],
    ) -> None:
        """Set `values` on the row whose primary key is `key` if it also matches `where` (None
        is matched as null); the whole batch takes effect only if it does (and every `require`
        holds). The required rows are locked before the guarded one, in the order added."""
        if self._guard is not None:
            raise BatchError("a batch has one guard")
        if not values:
            raise BatchError("a guard changes at least one column")
        key_columns = _primary_key(table, key)
        _time_positions(table, key_columns + tuple(where) + tuple(values))
        self._claim(table, key, key_columns)
        self._guard = _Guard(
            table,
            tuple((c, key[c]) for c in key_columns),
            tuple(where.items()),
            tuple(values.items()),
        )

    def _claim(self, table: Table, key: Mapping[str, Any], key_columns: tuple[str, ...]) -> None:
        identity = (table.name, tuple(key[c] for c in key_columns))
        if identity in self._updated_keys:
            raise BatchError(f"a batch updates a row of {table.name} once")
        self._updated_keys.add(identity)

    def flush(self, tx: Connection) -> Flushed:
        """Send everything collected and empty the batch."""
        ops, self._ops = self._ops, []
        requires, self._requires = self._requires, []
        guard, self._guard = self._guard, None
        self._inserts.clear()
        self._updates.clear()
        self._updated_keys.clear()
        if not ops and guard is None and not requires:
            return Flushed(True, [])
        if tx.dialect.name == "postgresql":
            return _flush_postgres(tx, requires, guard, ops)
        return _flush_generic(tx, requires, guard, ops)


@functools.cache
def _column_set(columns: tuple[str, ...]) -> frozenset[str]:
    return frozenset(columns)


@functools.cache
def _primary_key_columns(table: Table) -> frozenset[str]:
    return frozenset(c.name for c in table.primary_key.columns)


def _primary_key(table: Table, key: Mapping[str, Any]) -> tuple[str, ...]:
    columns = tuple(key)
    if set(columns) != _primary_key_columns(table):
        raise BatchError(f"a row of {table.name} is named by its whole primary key")
    return columns


@functools.cache
def _time_positions(table: Table, columns: tuple[str, ...]) -> tuple[int, ...]:
    """Where the timestamp columns are among `columns` (cached: the shapes are few)."""
    unknown = [c for c in columns if c not in table.c]
    if unknown:
        raise BatchError(f"{table.name} has no column {unknown[0]}")
    return tuple(i for i, c in enumerate(columns) if isinstance(table.c[c].type, UTCDateTime))


def _aware(values: Sequence[Any], times: Iterable[int]) -> None:
    for i in times:
        moment = values[i]
        if moment is not None and moment.tzinfo is None:
            raise BatchError("naive datetime given to the database")


def _columns_of(op: _Op) -> tuple[str, ...]:
    if isinstance(op, _Insert):
        return op.columns
    return op.keys + op.values + op.increments


# --- PostgreSQL: one statement ----------------------------------------------------------------

_sql_cache: dict[tuple[Any, ...], str] = {}
_sql_cache_lock = threading.Lock()
_GATE = "EXISTS (SELECT 1 FROM g)"


def _pg_type(column_type: Any) -> str:
    if isinstance(column_type, UTCDateTime):
        return "timestamptz"
    name = str(column_type.dialect_impl(_PG).compile(dialect=_PG)).lower()
    return "text" if name.startswith("varchar") else name


def _param(table: Table, column: str) -> str:
    return f"%s::{_pg_type(table.c[column].type)}"


def _shape(op: _Op) -> tuple[Any, ...]:
    if isinstance(op, _Insert):
        return ("i", op.table.name, op.columns, None if op.then is None else op.then.name)
    return ("u", op.table.name, op.keys, op.values, op.increments, len(op.rows))


def _op_sql(op: _Op, gated: bool) -> str:
    table = op.table.name
    if isinstance(op, _Insert):
        # One JSON parameter per insert: its rows as objects, typed by the table's own row type.
        columns = ", ".join(op.columns)
        return (
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM "
            f"json_populate_recordset(NULL::{table}, %s::json)"
            + (f" WHERE {_GATE}" if gated else "")
            + ("" if op.then is None else f" RETURNING {', '.join(op.then.reads)}")
        )
    # Updates name their rows in a VALUES list: the planner then knows how few they are and
    # finds each by its primary key (a set-returning function would be guessed at 100 rows,
    # enough for a plan that scans the table).
    names = _columns_of(op)
    first = "(" + ", ".join(_param(op.table, c) for c in names) + ")"
    rest = "(" + ", ".join("%s" for _ in names) + ")"
    rows = ", ".join([first] + [rest] * (len(op.rows) - 1))
    sets = [f"{c} = u.{c}" for c in op.values] + [f"{c} = t.{c} + u.{c}" for c in op.increments]
    match = " AND ".join(f"t.{c} = u.{c}" for c in op.keys)
    return (
        f"UPDATE {table} AS t SET {', '.join(sets)} "
        f"FROM (VALUES {rows}) AS u({', '.join(names)}) WHERE {match}"
        + (f" AND {_GATE}" if gated else "")
        + " RETURNING 1"
    )


def _require_sql(check: _Require, index: int) -> str:
    t = check.table
    conditions = [f"{c} = {_param(t, c)}" for c, _ in check.key] + [
        f"{c} IS NOT DISTINCT FROM {_param(t, c)}" for c, _ in check.equal
    ]
    if index > 0:
        conditions.append(f"EXISTS (SELECT 1 FROM r{index - 1})")
    locking = " FOR UPDATE" if check.lock else ""
    columns = ", ".join(check.returning) or "1"
    return f"SELECT {columns} FROM {t.name} WHERE {' AND '.join(conditions)}{locking}"


def _guard_sql(guard: _Guard, requires: int) -> str:
    t = guard.table
    sets = ", ".join(f"{c} = {_param(t, c)}" for c, _ in guard.values)
    conditions = [f"{c} = {_param(t, c)}" for c, _ in guard.key]
    conditions += [f"{c} IS NOT DISTINCT FROM {_param(t, c)}" for c, _ in guard.where]
    if requires:
        conditions.append(f"EXISTS (SELECT 1 FROM r{requires - 1})")
    return f"UPDATE {t.name} SET {sets} WHERE {' AND '.join(conditions)} RETURNING 1"


def _statement(requires: Sequence[_Require], guard: _Guard | None, ops: Sequence[_Op]) -> str:
    """`WITH r… AS (…), g AS (…), w… AS (…) SELECT <guard>, <rows matched by each update>`,
    cached by shape."""
    key = (
        tuple(
            (
                r.table.name,
                tuple(c for c, _ in r.key),
                tuple(c for c, _ in r.equal),
                r.lock,
                r.returning,
            )
            for r in requires
        ),
        None
        if guard is None
        else (
            guard.table.name,
            tuple(c for c, _ in guard.key),
            tuple(c for c, _ in guard.where),
            tuple(c for c, _ in guard.values),
        ),
        tuple(_shape(op) for op in ops),
    )
    with _sql_cache_lock:
        found = _sql_cache.get(key)
    if found is not None:
        return found
    parts = [f"r{n} AS ({_require_sql(r, n)})" for n, r in enumerate(requires)]
    if guard is not None:
        parts.append(f"g AS ({_guard_sql(guard, len(requires))})")
    elif requires:
        # No update to hang the conditions on: the last one holds only if all of them do.
        parts.append(f"g AS (SELECT 1 WHERE EXISTS (SELECT 1 FROM r{len(requires) - 1}))")
    gated = guard is not None or bool(requires)
    for n, op in enumerate(ops):
        parts.append(f"w{n} AS ({_op_sql(op, gated)})")
        if isinstance(op, _Insert) and op.then is not None:
            parts.append(f"d{n} AS ({_derived_sql(op.then, op.table, f'w{n}')})")
    counted = ["(SELECT count(*) FROM g)" if gated else "1"]
    counted += [
        f"(SELECT count(*) FROM w{n})" for n, op in enumerate(ops) if isinstance(op, _Update)
    ]
    counted += [f"(SELECT {c} FROM r{n})" for n, r in enumerate(requires) for c in r.returning]
    text = f"WITH {', '.join(parts)} SELECT {', '.join(counted)}"
    with _sql_cache_lock:
        if len(_sql_cache) > 1_000:
            _sql_cache.clear()
        _sql_cache[key] = text
    return text


def _derived_sql(derived: Derived, source: Table, relation: str) -> str:
    """The derived insert reading the rows of the sub-statement `relation`, as PostgreSQL
    text for the driver (literals inline, percent signs doubled)."""
    rows = table(relation, *[column(c, source.c[c].type) for c in derived.reads])
    compiled = derived.build(rows).compile(dialect=_PG, compile_kwargs={"literal_binds": True})
    return str(compiled)


def _json_rows(op: _Insert) -> str:
    try:
        return dumps_json(op.rows)
    except NaiveDatetimeError as exc:
        raise BatchError(str(exc)) from None


def _pairs_params(table: Table, pairs: Sequence[tuple[str, Any]]) -> list[Any]:
    values = [v for _, v in pairs]
    _aware(values, _time_positions(table, tuple(c for c, _ in pairs)))
    return values


def _flush_postgres(
    tx: Connection, requires: Sequence[_Require], guard: _Guard | None, ops: Sequence[_Op]
) -> Flushed:
    import psycopg

    text = _statement(requires, guard, ops)
    params: list[Any] = []
    for r in requires:
        params += _pairs_params(r.table, r.key + r.equal)
    if guard is not None:
        params += _pairs_params(guard.table, guard.values + guard.key + guard.where)
    for op in ops:
        if isinstance(op, _Insert):
            params.append(_json_rows(op))
        else:
            times = _time_positions(op.table, _columns_of(op))
            for values in op.rows:
                _aware(values, times)
                params.extend(values)
    cursor = tx.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(text, params)
        counts = cursor.fetchone()
    except psycopg.Error as exc:
        raise DBAPIError.instance(text, params, exc, psycopg.Error) from exc
    finally:
        cursor.close()
    assert counts is not None
    updates = sum(1 for op in ops if isinstance(op, _Update))
    applied = bool(counts[0])
    returned: list[dict[str, Any]] = []
    position = 1 + updates
    for r in requires:
        if r.returning:
            values = counts[position : position + len(r.returning)]
            returned.append(_as_read(r.table, dict(zip(r.returning, values, strict=True))))
            position += len(r.returning)
    return Flushed(applied, [int(v) for v in counts[1 : 1 + updates]], returned if applied else [])


def _as_read(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """Timestamps as the table's own type reads them (aware, in UTC)."""
    for name, value in row.items():
        column_type = table.c[name].type
        if isinstance(column_type, UTCDateTime):
            row[name] = column_type.process_result_value(value, _PG)
    return row


# --- SQLite and anything else: one statement per operation ------------------------------------

_generic_cache: dict[tuple[Any, ...], Any] = {}


def _flush_generic(
    tx: Connection, requires: Sequence[_Require], guard: _Guard | None, ops: Sequence[_Op]
) -> Flushed:
    # Nothing is written until every check has passed, so a batch that does not apply leaves
    # the caller's transaction as it found it.
    returned: list[dict[str, Any]] = []
    for r in requires:
        t = r.table
        conditions = [t.c[c] == v for c, v in r.key] + [
            t.c[c].is_not_distinct_from(v) for c, v in r.equal
        ]
        columns: list[Any] = [t.c[c] for c in r.returning] or [literal(1)]
        query = select(*columns).where(*conditions)
        if r.lock:
            query = query.with_for_update()
        found = tx.execute(query).first()
        if found is None:
            return Flushed(False, [])
        if r.returning:
            returned.append(dict(zip(r.returning, found, strict=True)))
    if guard is not None:
        t = guard.table
        _pairs_params(t, guard.values)
        changed = tx.execute(
            update(t)
            .where(*[t.c[c] == v for c, v in guard.key])
            .where(*[t.c[c].is_not_distinct_from(v) for c, v in guard.where])
            .values(dict(guard.values))
        ).rowcount
        if changed != 1:
            return Flushed(False, [])
    for op in ops:
        times = _time_positions(op.table, _columns_of(op))
        if isinstance(op, _Insert):
            for mapping in op.rows:
                _aware([mapping[op.columns[i]] for i in times], range(len(times)))
        else:
            for values in op.rows:
                _aware(values, times)
    matched: list[int] = []
    for op in ops:
        if isinstance(op, _Insert):
            tx.execute(insert(op.table), list(op.rows))
            if op.then is not None:
                tx.execute(op.then.build(_inserted_rows(op, op.then)))
            continue
        statement = _generic_update(op)
        names = _columns_of(op)
        total = 0
        for row in op.rows:
            total += tx.execute(
                statement, {f"b_{n}": value for n, value in zip(names, row, strict=True)}
            ).rowcount
        matched.append(total)
    return Flushed(True, matched, returned)


def _inserted_rows(op: _Insert, derived: Derived) -> FromClause:
    """The rows `op` inserted, read back by their primary key, as the relation `derived`
    reads."""
    t = op.table
    key = [c.name for c in t.primary_key.columns]
    return (
        select(*[t.c[c] for c in derived.reads])
        .where(tuple_(*[t.c[c] for c in key]).in_([tuple(r[c] for c in key) for r in op.rows]))
        .subquery("inserted")
    )


def _generic_update(op: _Update) -> Any:
    shape = _shape(op)
    found = _generic_cache.get(shape)
    if found is not None:
        return found
    table = op.table
    where = [table.c[c] == bindparam(f"b_{c}") for c in op.keys]
    sets: dict[str, Any] = {c: bindparam(f"b_{c}") for c in op.values}
    sets.update({c: table.c[c] + bindparam(f"b_{c}") for c in op.increments})
    statement = update(table).where(*where).values(sets)
    _generic_cache[shape] = statement
    return statement
