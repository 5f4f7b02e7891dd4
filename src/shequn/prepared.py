"""Statements of the busiest use cases, sent straight to the driver on PostgreSQL.

A SQLAlchemy Core statement built once is compiled once, but every execution still walks
SQLAlchemy's execution context, builds result metadata from the cursor description and wraps
each row: several times the CPU of the driver's own work, and more the wider the row (measured
in docs/benchmarks.md). `Prepared` compiles a statement once per dialect and, on PostgreSQL,
executes the SQL text on the psycopg cursor of the caller's transaction, applying the same bind
and result processors SQLAlchemy would. Elsewhere (SQLite) it runs through SQLAlchemy as usual.
Either way the rows answer `row.name` and `row._mapping`, like SQLAlchemy rows.

Only statements whose parameters are all named and none expanding (no `IN` lists) can be
prepared; anything else is refused when the statement is first compiled.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler


class _Row:
    """Mixed into the generated row classes: `_mapping`, as SQLAlchemy rows have."""

    __slots__ = ()
    _fields: tuple[str, ...]

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))  # type: ignore[call-overload]


class _Compiled:
    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):
            raise TypeError("only SQL statements can be prepared")
        if compiled.positional or "POSTCOMPILE" in compiled.string:
            raise ValueError("a prepared statement takes named, non-expanding parameters")
        self.sql = compiled.string
        # Values bound in the statement itself (literals in WHERE and SET clauses).
        self.defaults: dict[str, Any] = dict(compiled.construct_params(_check=False) or {})
        self.bind_processors: dict[str, Callable[[Any], Any]] = {
            name: cast(Callable[[Any], Any], p)
            for name, p in (compiled._bind_processors or {}).items()
            if p is not None
        }
        names: list[str] = []
        processors: list[tuple[int, Callable[[Any], Any]]] = []
        for i, column in enumerate(compiled._result_columns):
            names.append(column[0])
            processor = column[3]._cached_result_processor(dialect, None)
            if processor is not None:
                processors.append((i, processor))
        self.result_processors = processors
        self.row_type = (
            type("Row", (_Row, namedtuple("Row", names)), {"__slots__": ()}) if names else None
        )

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        params = {**self.defaults, **given}
        for name, processor in self.bind_processors.items():
            if name in params:
                params[name] = processor(params[name])
        return params

    def rows(self, raw: Sequence[tuple[Any, ...]]) -> list[Any]:
        row_type = self.row_type
        if row_type is None:
            return []
        if not self.result_processors:
            return [row_type(*r) for r in raw]
        out = []
        for r in raw:
            values = list(r)
            for i, processor in self.result_processors:
                values[i] = processor(values[i])
            out.append(row_type(*values))
        return out


class Prepared:
    """A Core statement compiled once per dialect; on PostgreSQL run on the driver's cursor."""

    def __init__(
        self, statement: ClauseElement, *, postgresql: ClauseElement | None = None
    ) -> None:
        """`postgresql` is the same statement written for PostgreSQL where the portable one
        cannot be prepared (`= ANY(:array)` for an `IN` list)."""
        self.statement = statement
        self.postgresql = statement if postgresql is None else postgresql
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _for(self, dialect: Dialect) -> _Compiled:
        # Only the PostgreSQL form is ever compiled here; other dialects go through SQLAlchemy.
        found = self._compiled.get(dialect.name)
        if found is None:
            with self._lock:
                found = self._compiled.get(dialect.name)
                if found is None:
                    found = _Compiled(self.postgresql, dialect)
                    self._compiled[dialect.name] = found
        return found

    def all(self, tx: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Every row the statement returns."""
        if tx.dialect.name != "postgresql":
            return list(tx.execute(cast(Executable, self.statement), dict(params)).all())
        import psycopg

        compiled = self._for(tx.dialect)
        values = compiled.params(params)
        cursor = tx.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.sql, values)
            # (`cursor.description` would build the column objects this path exists to skip.)
            raw = cursor.fetchall() if compiled.row_type is not None else []
        except psycopg.Error as exc:
            raise DBAPIError.instance(compiled.sql, values, exc, psycopg.Error) from exc
        finally:
            cursor.close()
        return compiled.rows(raw)

    def first(self, tx: Connection, params: Mapping[str, Any]) -> Any | None:
        """The first row, or None."""
        rows = self.all(tx, params)
        return rows[0] if rows else None
