"""Import and export rules (pure): the columns of each file, reading a CSV file into records
with their line numbers, checking every field, the checks across the rows of a file, and the
checks against what the tenant already holds (handed in as plain facts by the use case).

A check never stops at the first problem: every bad row of a file is reported, each error with
its line (the header is line 1; a quoted value over several lines counts from its first), the
column when one is to blame, and a stable code (`transfer.error.<code>` in the catalogs).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from shequn.errors import DomainError, InvalidInput
from shequn.members.rules import PurchaseFacts, normalise_phone, normalise_tag
from shequn.money import MAX_AMOUNT_FEN
from shequn.orders.rules import OrderStatus

# The limits of the use cases that make the same rows one at a time (members.service,
# orders.creation); a test checks that they agree.
MAX_NAME = 80
MAX_TAGS = 50
MAX_QUANTITY = 10_000
MAX_LINES = 100
MAX_SKU = 64

# An imported order keeps its external id as its idempotency key, behind this prefix (so that
# it never meets a key an API client chose); the key column holds 80 characters.
ORDER_KEY_PREFIX = "import:"
MAX_EXTERNAL_ORDER_ID = 80 - len(ORDER_KEY_PREFIX)
TAG_SEPARATOR = "|"


class ImportKind(StrEnum):
    MEMBERS = "members"
    ORDERS = "orders"
    REFERRALS = "referrals"


class ExportKind(StrEnum):
    MEMBERS = "members"
    ORDERS = "orders"
    COMMISSIONS = "commissions"
    LEDGER = "ledger"


class ExportFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"


@dataclass(frozen=True)
class Columns:
    """The columns of a file: `required` ones must be in the header, `optional` ones may be;
    `informative` ones are what an export adds for its reader (counts, ids), which an import
    reads past. Any other column is refused (a misspelt column would otherwise be lost)."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    informative: tuple[str, ...] = ()

    @property
    def imported(self) -> tuple[str, ...]:
        return self.required + self.optional

    @property
    def known(self) -> frozenset[str]:
        return frozenset(self.required + self.optional + self.informative)


MEMBER_COLUMNS = Columns(
    required=("external_id", "name"),
    optional=("phone", "tags", "tier", "referrer_external_id", "registered_at"),
    informative=(
        "id",
        "binding_source",
        "bound_at",
        "direct_count",
        "team_count",
        "paid_order_count",
        "paid_total_fen",
    ),
)
ORDER_COLUMNS = Columns(
    required=("external_order_id", "buyer_external_id", "sku", "quantity"),
    optional=("unit_price_fen", "paid_at", "status"),
    informative=(
        "order_id",
        "line_no",
        "list_price_fen",
        "line_total_fen",
        "refunded_fen",
        "order_total_fen",
        "created_at",
    ),
)
REFERRAL_COLUMNS = Columns(required=("member_external_id", "referrer_external_id"))

IMPORT_COLUMNS = {
    ImportKind.MEMBERS: MEMBER_COLUMNS,
    ImportKind.ORDERS: ORDER_COLUMNS,
    ImportKind.REFERRALS: REFERRAL_COLUMNS,
}

# Every code a row error may carry; each has a text in both catalogs (a test checks).
ROW_ERROR_CODES = frozenset(
    {
        # the file as a whole
        "file_empty",
        "encoding_invalid",
        "csv_invalid",
        "column_missing",
        "column_unknown",
        "column_duplicate",
        "row_too_long",
        # one field
        "value_required",
        "text_invalid",
        "id_too_long",
        "name_invalid",
        "phone_invalid",
        "tag_invalid",
        "too_many_tags",
        "time_invalid",
        "time_in_future",
        "quantity_invalid",
        "amount_invalid",
        "status_invalid",
        "paid_at_required",
        "paid_at_unexpected",
        # across the rows of the file
        "external_id_duplicate",
        "phone_duplicate",
        "member_duplicate",
        "order_rows_disagree",
        "order_sku_repeated",
        "order_lines_too_many",
        "order_total_too_large",
        # against what the tenant holds
        "phone_taken",
        "tier_unknown",
        "referrer_unknown",
        "self_referral",
        "referral_cycle",
        "already_bound",
        "member_unknown",
        "buyer_unknown",
        "product_unknown",
        "product_inactive",
    }
)


@dataclass(frozen=True)
class RowError:
    line: int
    code: str
    field: str | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    """One row of a file: its first line and its values by column (trimmed; "" when empty)."""

    line: int
    values: Mapping[str, str]

    def get(self, column: str) -> str:
        return self.values.get(column, "")


# --- reading a file ----------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def decode(data: bytes) -> tuple[str | None, RowError | None]:
    """The text of a UTF-8 file, with or without the byte-order mark Excel writes; or the error
    naming the line of the first byte that is not UTF-8."""
    body = data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        return None, RowError(line, "encoding_invalid")
    if not text.strip():
        return None, RowError(1, "file_empty")
    return text, None


def read_records(data: bytes, columns: Columns) -> tuple[list[Record], list[RowError]]:
    """The records of a CSV file, checked against `columns`. A file whose header is wrong
    gives no records: its rows cannot be read."""
    text, error = decode(data)
    if text is None:
        assert error is not None
        return [], [error]
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    header_line = 1
    records: list[Record] = []
    errors: list[RowError] = []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(start, "csv_invalid", params={"reason": str(exc)}))
            break
        if not any(cell.strip() for cell in row):
            continue  # a blank line, or one Excel filled with commas
        if header is None:
            header, header_line = [cell.strip().lower() for cell in row], start
            header_errors = _header_errors(header, columns, start)
            if header_errors:
                return [], header_errors
            continue
        values: dict[str, str] = {}
        for index, cell in enumerate(row):
            if index >= len(header):
                if cell.strip():
                    errors.append(RowError(start, "row_too_long", params={"columns": len(header)}))
                    break
                continue
            name = header[index]
            if name in columns.imported:
                values[name] = cell.strip()
        records.append(Record(start, values))
    if header is None:
        return [], [*errors, RowError(header_line, "file_empty")]
    return records, errors


def _header_errors(header: Sequence[str], columns: Columns, line: int) -> list[RowError]:
    errors: list[RowError] = []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            errors.append(RowError(line, "column_duplicate", name, {"column": name}))
        elif name and name not in columns.known:
            errors.append(RowError(line, "column_unknown", name, {"column": name}))
        seen.add(name)
    for name in columns.required:
        if name not in seen:
            errors.append(RowError(line, "column_missing", name, {"column": name}))
    return errors


class _Fields:
    """Reads the fields of one record, collecting an error per bad field."""

    def __init__(self, record: Record, errors: list[RowError]) -> None:
        self.record = record
        self.errors = errors
        self.failed = False

    def fail(self, column: str, code: str, **params: Any) -> None:
        self.failed = True
        self.errors.append(RowError(self.record.line, code, column, params))

    def text(self, column: str, *, required: bool = False) -> str | None:
        value = self.record.get(column)
        if _CONTROL.search(value):
            self.fail(column, "text_invalid")
            return None
        if not value:
            if required:
                self.fail(column, "value_required")
            return None
        return value

    def key(self, column: str, *, required: bool = True, longest: int = 80) -> str | None:
        value = self.text(column, required=required)
        if value is None:
            return None
        if len(value) > longest:
            self.fail(column, "id_too_long", max=longest)
            return None
        return value

    def time(self, column: str, zone: ZoneInfo, now: datetime) -> datetime | None:
        value = self.text(column)
        if value is None:
            return None
        parsed = parse_time(value, zone)
        if parsed is None:
            self.fail(column, "time_invalid", value=value)
            return None
        if parsed > now:
            self.fail(column, "time_in_future", value=value)
            return None
        return parsed

    def integer(self, column: str, code: str, low: int, high: int, **params: Any) -> int | None:
        value = self.text(column)
        if value is None:
            return None
        number = int(value) if re.fullmatch(r"[+-]?\d{1,19}", value) else None
        if number is None or not low <= number <= high:
            self.fail(column, code, value=value, **params)
            return None
        return number


# --- times -------------------------------------------------------------------------------------

_TIME = re.compile(
    r"(?P<y>\d{4})[-/](?P<m>\d{1,2})[-/](?P<d>\d{1,2})"
    r"(?:[ T](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<f>\d{1,6}))?)?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?"
)


def parse_time(text: str, zone: ZoneInfo) -> datetime | None:
    """A date or a date and time as files write them (`2026-01-05`, `2026/1/5 9:30`,
    `2026-01-05T09:30:00+08:00`, `…Z`); without an offset it is a time of `zone`. A date alone
    is its first moment. None when the text is none of these."""
    found = _TIME.fullmatch(text.strip())
    if found is None:
        return None
    g = found.groupdict()
    try:
        moment = datetime(
            int(g["y"]),
            int(g["m"]),
            int(g["d"]),
            int(g["H"] or 0),
            int(g["M"] or 0),
            int(g["S"] or 0),
            int((g["f"] or "0").ljust(6, "0")),
        )
    except ValueError:
        return None
    offset = g["tz"]
    if offset is None:
        return moment.replace(tzinfo=zone).astimezone(UTC)
    if offset == "Z":
        return moment.replace(tzinfo=UTC)
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return (moment - delta if offset[0] == "+" else moment + delta).replace(tzinfo=UTC)


def export_range(
    start: str | None, end: str | None, time_zone: str
) -> tuple[datetime | None, datetime | None]:
    """The instants `[from, to)` an export covers. A date is a whole day of the tenant's time
    zone: `--from 2026-01-01 --to 2026-01-31` is January, both ends included; a date and time
    is that instant (`to` excluded)."""
    zone = ZoneInfo(time_zone)

    def bound(text: str | None, name: str, whole_day: bool) -> datetime | None:
        if text is None or not text.strip():
            return None
        parsed = parse_time(text, zone)
        if parsed is None:
            raise InvalidInput("export_date_invalid", field=name, value=text)
        if whole_day and re.fullmatch(r"\d{4}[-/]\d{1,2}[-/]\d{1,2}", text.strip()):
            local = parsed.astimezone(zone).date() + timedelta(days=1)
            return datetime.combine(local, time(), zone).astimezone(UTC)
        return parsed

    lower, upper = bound(start, "from", False), bound(end, "to", True)
    if lower is not None and upper is not None and lower >= upper:
        raise InvalidInput("export_range_invalid")
    return lower, upper


def shown_time(value: datetime, zone: ZoneInfo) -> str:
    """An instant as a file shows it: local to the tenant, to the second, with its offset."""
    return value.astimezone(zone).replace(microsecond=0).isoformat()


def cell(value: Any, zone: ZoneInfo) -> str:
    """A value as a CSV cell: empty for none, a time as `shown_time`, digits for an amount."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return shown_time(value, zone)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- keys of rows made elsewhere ---------------------------------------------------------------


def member_key(member_id: str, external_id: str | None) -> str:
    """How a file names a member: its external id, or its own id when it has none."""
    return external_id or member_id


def order_key(external_order_id: str) -> str:
    """The idempotency key an imported order is stored with."""
    return ORDER_KEY_PREFIX + external_order_id


def external_order_id(order_id: str, idempotency_key: str | None) -> str:
    """How a file names an order: the external id it was imported with, or its own id."""
    if idempotency_key is not None and idempotency_key.startswith(ORDER_KEY_PREFIX):
        return idempotency_key[len(ORDER_KEY_PREFIX) :]
    return order_id


# --- members -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberRow:
    line: int
    external_id: str | None
    name: str | None
    phone: str | None
    tags: tuple[str, ...]
    tier: str | None
    referrer: str | None
    registered_at: datetime | None


def clean_name(raw: str) -> str | None:
    name = " ".join(raw.split())
    return name if 0 < len(name) <= MAX_NAME else None


def parse_members(
    records: Iterable[Record], *, time_zone: str, now: datetime
) -> tuple[list[MemberRow], list[RowError]]:
    """Every record as a member row (a bad field is None, with its error)."""
    zone = ZoneInfo(time_zone)
    rows: list[MemberRow] = []
    errors: list[RowError] = []
    for record in records:
        f = _Fields(record, errors)
        external_id = f.key("external_id")
        raw_name = f.text("name", required=True)
        name = clean_name(raw_name) if raw_name is not None else None
        if raw_name is not None and name is None:
            f.fail("name", "name_invalid", max=MAX_NAME)
        phone = f.text("phone")
        if phone is not None:
            try:
                phone = normalise_phone(phone)
            except DomainError:
                f.fail("phone", "phone_invalid", value=phone)
                phone = None
        tags: set[str] = set()
        raw_tags = f.text("tags")
        for raw in (raw_tags or "").split(TAG_SEPARATOR):
            if not raw.strip():
                continue
            try:
                tags.add(normalise_tag(raw))
            except DomainError:
                f.fail("tags", "tag_invalid", tag=raw.strip()[:40])
        if len(tags) > MAX_TAGS:
            f.fail("tags", "too_many_tags", max=MAX_TAGS)
            tags = set()
        rows.append(
            MemberRow(
                line=record.line,
                external_id=external_id,
                name=name,
                phone=phone,
                tags=tuple(sorted(tags)),
                tier=f.text("tier"),
                referrer=f.key("referrer_external_id", required=False),
                registered_at=f.time("registered_at", zone, now),
            )
        )
    return rows, errors


@dataclass(frozen=True)
class KnownMember:
    """A member the tenant already has, as the checks need it."""

    id: str
    key: str  # how a file names it
    phone: str | None
    referrer_id: str | None
    referrer_key: str | None
    root_id: str  # the top of its referral tree (itself when unbound)


@dataclass(frozen=True)
class MemberFacts:
    """What the tenant holds that a file's rows name: members by external id and by id, the
    owners of the file's phones, the tiers by name and by id."""

    members: Mapping[str, KnownMember]
    phone_owners: Mapping[str, str] = dataclasses.field(default_factory=dict)
    tiers: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class MemberPlan:
    """What a clean members file does: the rows to create (in file order), each with its tier;
    the ties to make (member → referrer, new members by their external id, existing ones by
    their id; every member tied is unbound); the rows that matched an existing member."""

    create: tuple[MemberRow, ...]
    tier_of: Mapping[int, str | None]
    referrer_of: Mapping[str, str]
    matched: int


def check_members(
    rows: Sequence[MemberRow], facts: MemberFacts
) -> tuple[MemberPlan, list[RowError]]:
    """The checks across the rows and against the tenant; the plan is only to be carried out
    when no error is found (here or while parsing)."""
    errors: list[RowError] = []
    first_line: dict[str, int] = {}
    phone_line: dict[str, int] = {}
    unique: list[MemberRow] = []
    for row in rows:
        if row.external_id is None:
            continue
        if row.external_id in first_line:
            errors.append(
                RowError(
                    row.line,
                    "external_id_duplicate",
                    "external_id",
                    {"first_line": first_line[row.external_id]},
                )
            )
            continue
        first_line[row.external_id] = row.line
        unique.append(row)
        if row.phone is not None:
            if row.phone in phone_line:
                errors.append(
                    RowError(
                        row.line, "phone_duplicate", "phone", {"first_line": phone_line[row.phone]}
                    )
                )
            else:
                phone_line[row.phone] = row.line

    in_file = {r.external_id: r for r in unique if r.external_id is not None}

    def node_of(key: str) -> str | None:
        """The member a key names: a new member of the file by its key, an existing one by its
        id; None if nobody."""
        known = facts.members.get(key)
        if known is not None:
            return known.id
        return key if key in in_file else None

    create: list[MemberRow] = []
    tier_of: dict[int, str | None] = {}
    referrer_of: dict[str, str] = {}
    line_of: dict[str, int] = {}
    matched = 0
    for row in unique:
        assert row.external_id is not None
        known = facts.members.get(row.external_id)
        node = known.id if known is not None else row.external_id
        if known is None:
            create.append(row)
        else:
            matched += 1
        if row.phone is not None:
            owner = facts.phone_owners.get(row.phone)
            if owner is not None and (known is None or owner != known.id):
                errors.append(RowError(row.line, "phone_taken", "phone", {"phone": row.phone}))
        if row.tier is not None:
            tier_id = facts.tiers.get(row.tier)
            if tier_id is None:
                errors.append(RowError(row.line, "tier_unknown", "tier", {"tier": row.tier}))
            tier_of[row.line] = tier_id
        if row.referrer is None:
            continue
        target = node_of(row.referrer)
        if target is None:
            errors.append(
                RowError(
                    row.line,
                    "referrer_unknown",
                    "referrer_external_id",
                    {"referrer": row.referrer},
                )
            )
        elif target == node:
            errors.append(RowError(row.line, "self_referral", "referrer_external_id"))
        elif known is not None and known.referrer_id is not None:
            if known.referrer_id != target:
                errors.append(_already_bound(row.line, "referrer_external_id", known))
        else:
            referrer_of[node] = target
            line_of[node] = row.line
    errors += _cycle_errors(referrer_of, line_of, facts, "referrer_external_id")
    plan = MemberPlan(tuple(create), tier_of, referrer_of, matched)
    return plan, errors


def _already_bound(line: int, column: str, known: KnownMember) -> RowError:
    return RowError(line, "already_bound", column, {"referrer": known.referrer_key or ""})


def _cycle_errors(
    referrer_of: Mapping[str, str],
    line_of: Mapping[str, int],
    facts: MemberFacts,
    column: str,
) -> list[RowError]:
    roots = {m.id: m.root_id for m in facts.members.values()}
    on_cycle = members_on_cycles(referrer_of, lambda node: roots.get(node, node))
    return [
        RowError(line_of[node], "referral_cycle", column)
        for node in sorted(on_cycle, key=lambda n: line_of[n])
    ]


def members_on_cycles(referrer_of: Mapping[str, str], root_of: Callable[[str], str]) -> set[str]:
    """The members whose new tie would make them their own ancestor. Each member tied is the
    top of its own tree (unbound); `root_of` gives the top of the tree a referrer is in now
    (itself for a new member). Following "my referrer's top" from a tied member either ends
    at a top that is not tied, or comes back: the members on such a loop are refused."""
    state: dict[str, bool] = {}  # False while on the walk being made, True once done
    on_cycle: set[str] = set()
    for start in referrer_of:
        path: list[str] = []
        node: str | None = start
        while node is not None and node not in state:
            state[node] = False
            path.append(node)
            target = referrer_of.get(node)
            node = root_of(target) if target is not None else None
        if node is not None and state[node] is False:
            on_cycle.update(path[path.index(node) :])
        for visited in path:
            state[visited] = True
    return on_cycle


# --- referral ties -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferralRow:
    line: int
    member: str | None
    referrer: str | None


def parse_referrals(records: Iterable[Record]) -> tuple[list[ReferralRow], list[RowError]]:
    rows: list[ReferralRow] = []
    errors: list[RowError] = []
    for record in records:
        f = _Fields(record, errors)
        rows.append(
            ReferralRow(record.line, f.key("member_external_id"), f.key("referrer_external_id"))
        )
    return rows, errors


@dataclass(frozen=True)
class ReferralPlan:
    referrer_of: Mapping[str, str]  # member id → referrer id, every member unbound
    matched: int  # rows whose tie exists already


def check_referrals(
    rows: Sequence[ReferralRow], facts: MemberFacts
) -> tuple[ReferralPlan, list[RowError]]:
    errors: list[RowError] = []
    referrer_of: dict[str, str] = {}
    line_of: dict[str, int] = {}
    first_line: dict[str, int] = {}
    matched = 0
    for row in rows:
        member = facts.members.get(row.member) if row.member is not None else None
        referrer = facts.members.get(row.referrer) if row.referrer is not None else None
        if row.member is not None and member is None:
            errors.append(
                RowError(row.line, "member_unknown", "member_external_id", {"member": row.member})
            )
        if row.referrer is not None and referrer is None:
            errors.append(
                RowError(
                    row.line,
                    "referrer_unknown",
                    "referrer_external_id",
                    {"referrer": row.referrer},
                )
            )
        if member is None or referrer is None:
            continue
        if member.id in first_line:
            errors.append(
                RowError(
                    row.line,
                    "member_duplicate",
                    "member_external_id",
                    {"first_line": first_line[member.id]},
                )
            )
            continue
        first_line[member.id] = row.line
        if member.id == referrer.id:
            errors.append(RowError(row.line, "self_referral", "referrer_external_id"))
        elif member.referrer_id == referrer.id:
            matched += 1
        elif member.referrer_id is not None:
            errors.append(_already_bound(row.line, "referrer_external_id", member))
        else:
            referrer_of[member.id] = referrer.id
            line_of[member.id] = row.line
    errors += _cycle_errors(referrer_of, line_of, facts, "referrer_external_id")
    return ReferralPlan(referrer_of, matched), errors


# --- orders ------------------------------------------------------------------------------------

PAID_STATUSES = frozenset(
    {OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.COMPLETED, OrderStatus.CLOSED}
)
UNPAID_STATUSES = frozenset({OrderStatus.CREATED, OrderStatus.CANCELLED})
IMPORTED_STATUSES = PAID_STATUSES | UNPAID_STATUSES


@dataclass(frozen=True)
class OrderRow:
    """One line of an order (the rows of one order share its external id)."""

    line: int
    external_order_id: str | None
    buyer: str | None
    sku: str | None
    quantity: int | None
    unit_price_fen: int | None
    paid_at: datetime | None
    status: OrderStatus | None


def parse_orders(
    records: Iterable[Record], *, time_zone: str, now: datetime
) -> tuple[list[OrderRow], list[RowError]]:
    zone = ZoneInfo(time_zone)
    rows: list[OrderRow] = []
    errors: list[RowError] = []
    for record in records:
        f = _Fields(record, errors)
        external = f.key("external_order_id", longest=MAX_EXTERNAL_ORDER_ID)
        buyer = f.key("buyer_external_id")
        sku = f.key("sku", longest=MAX_SKU)
        quantity = f.integer("quantity", "quantity_invalid", 1, MAX_QUANTITY, max=MAX_QUANTITY)
        if quantity is None and not f.record.get("quantity"):
            f.fail("quantity", "value_required")
        price = f.integer("unit_price_fen", "amount_invalid", 0, MAX_AMOUNT_FEN)
        paid_at = f.time("paid_at", zone, now)
        raw_status = f.text("status")
        status: OrderStatus | None
        if raw_status is None:
            status = OrderStatus.PAID if f.record.get("paid_at") else OrderStatus.CREATED
        else:
            status = next((s for s in IMPORTED_STATUSES if s.value == raw_status.lower()), None)
            if status is None:
                f.fail("status", "status_invalid", status=raw_status)
        if status in PAID_STATUSES and not f.record.get("paid_at"):
            f.fail("paid_at", "paid_at_required", status=status.value)
        if status in UNPAID_STATUSES and f.record.get("paid_at"):
            f.fail("paid_at", "paid_at_unexpected", status=status.value)
        rows.append(OrderRow(record.line, external, buyer, sku, quantity, price, paid_at, status))
    return rows, errors


@dataclass(frozen=True)
class KnownProduct:
    id: str
    sku: str
    name: str
    price_fen: int
    ladder_role: str
    category: str | None
    active: bool


@dataclass(frozen=True)
class OrderFacts:
    """What the tenant holds that an orders file names: the external ids (and ids) of orders
    it has already, buyers by external id and by id, products by sku."""

    orders: frozenset[str]
    buyers: Mapping[str, str]
    products: Mapping[str, KnownProduct]


@dataclass(frozen=True)
class PlannedLine:
    product: KnownProduct
    quantity: int
    unit_price_fen: int

    @property
    def total_fen(self) -> int:
        return self.quantity * self.unit_price_fen


@dataclass(frozen=True)
class PlannedOrder:
    external_order_id: str
    buyer_id: str
    status: OrderStatus
    paid_at: datetime | None
    lines: tuple[PlannedLine, ...]

    @property
    def subtotal_fen(self) -> int:
        return sum(line.quantity * line.product.price_fen for line in self.lines)

    @property
    def total_fen(self) -> int:
        return sum(line.total_fen for line in self.lines)


@dataclass(frozen=True)
class OrderPlan:
    create: tuple[PlannedOrder, ...]
    matched: int  # orders (not rows) the tenant has already


def check_orders(rows: Sequence[OrderRow], facts: OrderFacts) -> tuple[OrderPlan, list[RowError]]:
    errors: list[RowError] = []
    groups: dict[str, list[OrderRow]] = defaultdict(list)
    for row in rows:
        if row.external_order_id is not None:
            groups[row.external_order_id].append(row)
    create: list[PlannedOrder] = []
    matched = 0
    for external, group in groups.items():
        if external in facts.orders:
            matched += 1  # imported before: nothing of it is read again
            continue
        head = group[0]
        failed = False
        for row in group[1:]:
            for column, mine, first in (
                ("buyer_external_id", row.buyer, head.buyer),
                ("paid_at", row.paid_at, head.paid_at),
                ("status", row.status, head.status),
            ):
                if mine != first:
                    failed = True
                    errors.append(
                        RowError(row.line, "order_rows_disagree", column, {"first_line": head.line})
                    )
        if len(group) > MAX_LINES:
            failed = True
            errors.append(
                RowError(head.line, "order_lines_too_many", "external_order_id", {"max": MAX_LINES})
            )
        buyer_id = facts.buyers.get(head.buyer) if head.buyer is not None else None
        if head.buyer is not None and buyer_id is None:
            failed = True
            errors.append(
                RowError(head.line, "buyer_unknown", "buyer_external_id", {"buyer": head.buyer})
            )
        lines: list[PlannedLine] = []
        seen: dict[str, int] = {}
        for row in group:
            if row.sku is None:
                failed = True
                continue
            if row.sku in seen:
                failed = True
                errors.append(
                    RowError(row.line, "order_sku_repeated", "sku", {"first_line": seen[row.sku]})
                )
                continue
            seen[row.sku] = row.line
            product = facts.products.get(row.sku)
            if product is None:
                failed = True
                errors.append(RowError(row.line, "product_unknown", "sku", {"sku": row.sku}))
                continue
            if not product.active and row.status is OrderStatus.CREATED:
                failed = True
                errors.append(RowError(row.line, "product_inactive", "sku", {"sku": row.sku}))
                continue
            if row.quantity is None:
                failed = True
                continue
            price = row.unit_price_fen if row.unit_price_fen is not None else product.price_fen
            lines.append(PlannedLine(product, row.quantity, price))
        total = sum(line.total_fen for line in lines)
        if total > MAX_AMOUNT_FEN:
            failed = True
            errors.append(RowError(head.line, "order_total_too_large", "unit_price_fen"))
        if failed or buyer_id is None or head.status is None:
            continue
        create.append(PlannedOrder(external, buyer_id, head.status, head.paid_at, tuple(lines)))
    return OrderPlan(tuple(create), matched), errors


def facts_with_orders(
    facts: PurchaseFacts, orders: Iterable[tuple[int, datetime]]
) -> PurchaseFacts:
    """A buyer's purchase facts with historical paid orders (amount, paid at) added, whenever
    they were paid: the first and last payment are the earliest and the latest of all."""
    count = facts.paid_order_count
    lifetime = facts.lifetime_order_count
    total, largest = facts.paid_total_fen, facts.max_order_fen
    first, last = facts.first_paid_at, facts.last_paid_at
    for amount, at in orders:
        count += 1
        lifetime += 1
        total += amount
        largest = max(largest, amount)
        first = at if first is None or at < first else first
        last = at if last is None or at > last else last
    return PurchaseFacts(count, lifetime, total, largest, first, last)
