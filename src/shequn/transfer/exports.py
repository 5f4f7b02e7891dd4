"""Exporting members, orders, commissions and the ledger as CSV or Parquet, streamed.

An export is prepared first (`prepare_export`: the kind, the format and the date range checked,
the tenant's time zone read), so that a bad request is refused before anything is sent; its
`chunks` then read the rows in one statement of one read transaction (a consistent picture,
fetched a few thousand rows at a time) and give the file piece by piece. Times are shown in the
tenant's time zone; amounts are integer fen. Members and orders come out in the columns their
import reads (plus a few for the reader that the import reads past), so an export imports.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from sqlalchemy import Select, and_, select

from shequn.context import Ctx
from shequn.distribution.tables import commission_lines
from shequn.errors import InvalidInput
from shequn.ledger.tables import accounts, journal_transactions, postings
from shequn.members.tables import member_tags, members
from shequn.orders.tables import order_lines, orders
from shequn.tenancy.repo import load_settings
from shequn.tiers.tables import tiers
from shequn.transfer.rules import (
    TAG_SEPARATOR,
    ExportFormat,
    ExportKind,
    cell,
    export_range,
    external_order_id,
    member_key,
)

FETCH_ROWS = 2_000  # rows fetched from the database at a time
CSV_CHUNK_CHARS = 1 << 16  # characters of CSV given out at a time
PARQUET_ROW_GROUP = 20_000

TEXT, INT, TIME = "text", "int", "time"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # TEXT, INT or TIME


def _columns(spec: str) -> tuple[Column, ...]:
    """`name:type` pairs separated by spaces (the type is text when left out)."""
    out = []
    for item in spec.split():
        name, _, kind = item.partition(":")
        out.append(Column(name, kind or TEXT))
    return tuple(out)


COLUMNS: dict[ExportKind, tuple[Column, ...]] = {
    ExportKind.MEMBERS: _columns(
        "external_id name phone tags tier referrer_external_id registered_at:time id"
        " binding_source bound_at:time direct_count:int team_count:int paid_order_count:int"
        " paid_total_fen:int"
    ),
    ExportKind.ORDERS: _columns(
        "external_order_id buyer_external_id sku quantity:int unit_price_fen:int paid_at:time"
        " status order_id line_no:int list_price_fen:int line_total_fen:int refunded_fen:int"
        " order_total_fen:int created_at:time"
    ),
    ExportKind.COMMISSIONS: _columns(
        "id order_id order_line_id plan_id beneficiary_id beneficiary_external_id level:int"
        " kind rate_bp:int base_fen:int amount_fen:int cancelled_fen:int reversed_fen:int"
        " withdrawn_fen:int status created_at:time released_at:time"
    ),
    ExportKind.LEDGER: _columns(
        "transaction_id kind ref_type ref_id occurred_at:time posting_id account_id owner_type"
        " owner_id purpose currency amount:int"
    ),
}
MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.PARQUET: "application/vnd.apache.parquet",
}


@dataclass(frozen=True)
class Export:
    """An export ready to be read: `chunks` gives the file piece by piece."""

    ctx: Ctx
    kind: ExportKind
    format: ExportFormat
    time_zone: str
    start: datetime | None
    end: datetime | None
    excel: bool = False

    @property
    def columns(self) -> tuple[Column, ...]:
        return COLUMNS[self.kind]

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    @property
    def filename(self) -> str:
        return f"{self.kind.value}.{self.format.value}"

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """The rows, in the order of `columns`."""
        query, shape = _QUERIES[self.kind](self.ctx.tenant_id, self.start, self.end)
        with self.ctx.db.read() as tx:
            result = tx.execute(query.execution_options(yield_per=FETCH_ROWS))
            yield from shape(result)

    def chunks(self) -> Iterator[bytes]:
        if self.format is ExportFormat.CSV:
            return self._csv()
        return self._parquet()

    def _csv(self) -> Iterator[bytes]:
        zone = ZoneInfo(self.time_zone)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([c.name for c in self.columns])
        if self.excel:
            yield codecs.BOM_UTF8
        for row in self.rows():
            writer.writerow([cell(v, zone) for v in row])
            if buffer.tell() >= CSV_CHUNK_CHARS:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()

    def _parquet(self) -> Iterator[bytes]:
        types = {TEXT: pa.string(), INT: pa.int64(), TIME: pa.timestamp("us", tz=self.time_zone)}
        schema = pa.schema([(c.name, types[c.type]) for c in self.columns])
        sink = _Sink()
        writer = pq.ParquetWriter(sink, schema)
        pending: list[tuple[Any, ...]] = []

        def write() -> None:
            columns = list(zip(*pending, strict=True)) if pending else [() for _ in schema]
            writer.write_table(
                pa.table([list(v) for v in columns], schema=schema), row_group_size=len(pending)
            )
            pending.clear()

        for row in self.rows():
            pending.append(row)
            if len(pending) == PARQUET_ROW_GROUP:
                write()
                yield sink.drain()
        if pending:
            write()
        writer.close()
        yield sink.drain()


class _Sink(io.RawIOBase):
    """Where the Parquet writer writes: the bytes wait here until they are given out."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def drain(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def prepare_export(
    ctx: Ctx,
    *,
    kind: str,
    format: str = "csv",
    start: str | None = None,
    end: str | None = None,
    excel: bool = False,
) -> Export:
    """Check what is asked for and read the tenant's time zone; nothing is exported yet."""
    try:
        parsed_kind = ExportKind(kind)
    except ValueError:
        raise InvalidInput("export_kind_invalid", kind=kind) from None
    try:
        parsed_format = ExportFormat(format)
    except ValueError:
        raise InvalidInput("export_format_invalid", format=format) from None
    with ctx.db.read() as tx:
        time_zone = load_settings(tx, ctx.tenant_id).time_zone
    lower, upper = export_range(start, end, time_zone)
    return Export(ctx, parsed_kind, parsed_format, time_zone, lower, upper, excel)


# --- the queries -------------------------------------------------------------------------------

Shape = Callable[[Any], Iterator[tuple[Any, ...]]]


def _in_range(query: Select[Any], column: Any, start: datetime | None, end: datetime | None) -> Any:
    if start is not None:
        query = query.where(column >= start)
    if end is not None:
        query = query.where(column < end)
    return query


def _members(tenant_id: str, start: datetime | None, end: datetime | None) -> tuple[Any, Shape]:
    m, r = members, members.alias("referrer")
    query = (
        select(
            m.c.id,
            m.c.external_id,
            m.c.name,
            m.c.phone,
            tiers.c.name.label("tier"),
            r.c.id.label("referrer_id"),
            r.c.external_id.label("referrer_external_id"),
            m.c.created_at,
            m.c.binding_source,
            m.c.bound_at,
            m.c.direct_count,
            m.c.team_count,
            m.c.paid_order_count,
            m.c.paid_total_fen,
            member_tags.c.tag,
        )
        .select_from(
            m.outerjoin(r, and_(r.c.tenant_id == m.c.tenant_id, r.c.id == m.c.referrer_id))
            .outerjoin(tiers, and_(tiers.c.tenant_id == m.c.tenant_id, tiers.c.id == m.c.tier_id))
            .outerjoin(
                member_tags,
                and_(member_tags.c.tenant_id == m.c.tenant_id, member_tags.c.member_id == m.c.id),
            )
        )
        .where(m.c.tenant_id == tenant_id)
        .order_by(m.c.id, member_tags.c.tag)
    )

    def shape(result: Any) -> Iterator[tuple[Any, ...]]:
        current: Any = None
        tags: list[str] = []
        for row in result:
            if current is not None and row.id != current.id:
                yield _member_row(current, tags)
                tags = []
            current = row
            if row.tag is not None:
                tags.append(row.tag)
        if current is not None:
            yield _member_row(current, tags)

    return _in_range(query, m.c.created_at, start, end), shape


def _member_row(row: Any, tags: Sequence[str]) -> tuple[Any, ...]:
    return (
        member_key(row.id, row.external_id),
        row.name,
        row.phone,
        TAG_SEPARATOR.join(tags),
        row.tier,
        member_key(row.referrer_id, row.referrer_external_id) if row.referrer_id else None,
        row.created_at,
        row.id,
        row.binding_source,
        row.bound_at,
        row.direct_count,
        row.team_count,
        row.paid_order_count,
        row.paid_total_fen,
    )


def _orders(tenant_id: str, start: datetime | None, end: datetime | None) -> tuple[Any, Shape]:
    o, line, buyer = orders, order_lines, members
    query = (
        select(
            o.c.id,
            o.c.idempotency_key,
            buyer.c.id.label("buyer_id"),
            buyer.c.external_id.label("buyer_external_id"),
            line.c.sku,
            line.c.quantity,
            line.c.unit_price_fen,
            o.c.paid_at,
            o.c.status,
            line.c.line_no,
            line.c.list_price_fen,
            line.c.line_total_fen,
            line.c.refunded_fen,
            o.c.total_fen,
            o.c.created_at,
        )
        .select_from(
            line.join(o, and_(o.c.tenant_id == line.c.tenant_id, o.c.id == line.c.order_id)).join(
                buyer, and_(buyer.c.tenant_id == o.c.tenant_id, buyer.c.id == o.c.buyer_id)
            )
        )
        .where(line.c.tenant_id == tenant_id)
        .order_by(o.c.id, line.c.line_no)
    )

    def shape(result: Any) -> Iterator[tuple[Any, ...]]:
        for r in result:
            yield (
                external_order_id(r.id, r.idempotency_key),
                member_key(r.buyer_id, r.buyer_external_id),
                r.sku,
                r.quantity,
                r.unit_price_fen,
                r.paid_at,
                r.status,
                r.id,
                r.line_no,
                r.list_price_fen,
                r.line_total_fen,
                r.refunded_fen,
                r.total_fen,
                r.created_at,
            )

    return _in_range(query, o.c.created_at, start, end), shape


def _commissions(tenant_id: str, start: datetime | None, end: datetime | None) -> tuple[Any, Shape]:
    cl, who = commission_lines, members
    query = (
        select(cl, who.c.external_id.label("beneficiary_external_id"))
        .select_from(
            cl.outerjoin(
                who, and_(who.c.tenant_id == cl.c.tenant_id, who.c.id == cl.c.beneficiary_id)
            )
        )
        .where(cl.c.tenant_id == tenant_id)
        .order_by(cl.c.id)
    )

    def shape(result: Any) -> Iterator[tuple[Any, ...]]:
        for r in result:
            yield (
                r.id,
                r.order_id,
                r.order_line_id,
                r.plan_id,
                r.beneficiary_id,
                member_key(r.beneficiary_id, r.beneficiary_external_id),
                r.level,
                r.kind,
                r.rate_bp,
                r.base_fen,
                r.amount_fen,
                r.cancelled_fen,
                r.reversed_fen,
                r.withdrawn_fen,
                r.status,
                r.created_at,
                r.released_at,
            )

    return _in_range(query, cl.c.created_at, start, end), shape


def _ledger(tenant_id: str, start: datetime | None, end: datetime | None) -> tuple[Any, Shape]:
    p, j, a = postings, journal_transactions, accounts
    query = (
        select(
            p.c.transaction_id,
            j.c.kind,
            j.c.ref_type,
            j.c.ref_id,
            j.c.occurred_at,
            p.c.id.label("posting_id"),
            p.c.account_id,
            a.c.owner_type,
            a.c.owner_id,
            a.c.purpose,
            p.c.currency,
            p.c.amount,
        )
        .select_from(
            p.join(j, and_(j.c.tenant_id == p.c.tenant_id, j.c.id == p.c.transaction_id)).join(
                a, and_(a.c.tenant_id == p.c.tenant_id, a.c.id == p.c.account_id)
            )
        )
        .where(p.c.tenant_id == tenant_id)
        .order_by(p.c.transaction_id, p.c.id)
    )

    def shape(result: Any) -> Iterator[tuple[Any, ...]]:
        for r in result:
            yield tuple(r)

    return _in_range(query, p.c.occurred_at, start, end), shape


_QUERIES: dict[ExportKind, Callable[[str, datetime | None, datetime | None], tuple[Any, Shape]]] = {
    ExportKind.MEMBERS: _members,
    ExportKind.ORDERS: _orders,
    ExportKind.COMMISSIONS: _commissions,
    ExportKind.LEDGER: _ledger,
}
