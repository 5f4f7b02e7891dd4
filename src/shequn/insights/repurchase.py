"""Repurchase (追销, seed 003's "让买的人再来买"): how long a product lasts before its buyer
should buy it again, who is past that, the reminders sent to them through their staff
account's outbox, and the revenue mix that tells a reminded repurchase from an organic one,
from referral and from everything else (ads, walk-ins).

A product's interval is the tenant's own, or learned from the tenant's order history: the
median gap, in days, between a member's successive orders of it (at least `MIN_GAPS` gaps).
A member is due when its last order of the product is older than the interval. A reminder
names that order; the member's next order of the product within the reminder's window
(`window_days`, 14 unless the tenant sets another) counts as a reminded repurchase.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    ColumnElement,
    Connection,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from shequn.catalog.tables import products
from shequn.community.outbox import Message, enqueue_messages
from shequn.community.tables import outbox_messages, staff_assignments
from shequn.context import Ctx
from shequn.db import Id, UTCDateTime, metadata
from shequn.distribution.simulator import parse_period
from shequn.errors import InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.i18n import Locale, translate_in
from shequn.ids import new_id
from shequn.members.tables import members
from shequn.orders.tables import order_lines, orders
from shequn.tenancy.repo import load_settings

DEFAULT_WINDOW_DAYS = 14
MIN_GAPS = 3
MAX_INTERVAL_DAYS = 3_650
MAX_WINDOW_DAYS = 365
MAX_PAGE = 500
MAX_REMINDERS = 5_000
MAX_MIX_DAYS = 3_660
REMINDER_KIND = "repurchase_reminder"

repurchase_intervals = Table(
    "repurchase_intervals",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("interval_days", Integer, nullable=True),  # null: learned from the orders
    Column("window_days", Integer, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "sku"),
    CheckConstraint(
        "interval_days IS NULL OR (interval_days >= 1 AND interval_days <= 3650)",
        name="interval",
    ),
    CheckConstraint("window_days >= 1 AND window_days <= 365", name="window"),
)

repurchase_reminders = Table(
    "repurchase_reminders",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("last_paid_at", UTCDateTime(), nullable=False),  # the order that made it due
    Column("due_at", UTCDateTime(), nullable=False),
    Column("reminded_at", UTCDateTime(), nullable=False),
    Column("counts_until", UTCDateTime(), nullable=False),  # the end of its window
    Column("task_id", Id, nullable=True),  # the outbox message
    PrimaryKeyConstraint("tenant_id", "id"),
    # One reminder per purchase that fell due, however often reminders are sent.
    UniqueConstraint("tenant_id", "member_id", "sku", "last_paid_at"),
    Index(None, "tenant_id", "reminded_at"),
)


def _kept_line() -> ColumnElement[bool]:
    """A line of a paid order that was not refunded in full (nor a late payment returned)."""
    return and_(
        orders.c.paid_at.is_not(None),
        orders.c.status != "cancelled",
        or_(
            order_lines.c.refunded_fen < order_lines.c.line_total_fen,
            order_lines.c.line_total_fen == 0,
        ),
    )


def _lines_joined() -> Any:
    return order_lines.join(
        orders,
        and_(orders.c.tenant_id == order_lines.c.tenant_id, orders.c.id == order_lines.c.order_id),
    )


def _days_between(tx: Connection, later: Any, earlier: Any) -> ColumnElement[Any]:
    if tx.dialect.name == "postgresql":
        return func.extract("epoch", later - earlier) / 86_400.0
    return func.julianday(later) - func.julianday(earlier)


# --- intervals ---------------------------------------------------------------------------------


def learned_intervals(
    tx: Connection, tenant_id: str, skus: Sequence[str] | None = None
) -> dict[str, tuple[int | None, int]]:
    """{sku: (median gap in whole days, number of gaps)} over the tenant's orders, the median
    None below `MIN_GAPS` gaps. Several lines of one order count as one purchase."""
    where = [order_lines.c.tenant_id == tenant_id, _kept_line()]
    if skus is not None:
        if not skus:
            return {}
        where.append(order_lines.c.sku.in_(sorted(skus)))
    bought = (
        select(
            order_lines.c.sku.label("sku"),
            orders.c.buyer_id.label("buyer_id"),
            orders.c.paid_at.label("paid_at"),
        )
        .select_from(_lines_joined())
        .where(*where)
        .group_by(order_lines.c.sku, orders.c.buyer_id, orders.c.id, orders.c.paid_at)
        .subquery("bought")
    )
    previous = (
        func.lag(bought.c.paid_at)
        .over(partition_by=(bought.c.buyer_id, bought.c.sku), order_by=bought.c.paid_at)
        .label("previous")
    )
    paired = select(bought.c.sku, bought.c.paid_at, previous).subquery("paired")
    gaps = (
        select(
            paired.c.sku,
            _days_between(tx, paired.c.paid_at, paired.c.previous).label("gap"),
        )
        .where(paired.c.previous.is_not(None))
        .subquery("gaps")
    )
    ranked = select(
        gaps.c.sku,
        gaps.c.gap,
        func.row_number().over(partition_by=gaps.c.sku, order_by=gaps.c.gap).label("rn"),
        func.count().over(partition_by=gaps.c.sku).label("n"),
    ).subquery("ranked")
    # The median: the middle gap, or the mean of the two middle ones.
    rows = tx.execute(
        select(ranked.c.sku, func.avg(ranked.c.gap), func.max(ranked.c.n))
        .where(ranked.c.rn.in_([(ranked.c.n + 1) / 2, (ranked.c.n + 2) / 2]))
        .group_by(ranked.c.sku)
    ).all()
    return {
        str(sku): (max(1, round(float(median))) if n >= MIN_GAPS else None, int(n))
        for sku, median, n in rows
    }


@dataclass(frozen=True)
class Interval:
    sku: str
    set_days: int | None
    learned_days: int | None
    gaps: int
    window_days: int

    @property
    def days(self) -> int | None:
        return self.set_days if self.set_days is not None else self.learned_days

    @property
    def source(self) -> str | None:
        if self.set_days is not None:
            return "set"
        return "learned" if self.learned_days is not None else None


def intervals(tx: Connection, tenant_id: str) -> dict[str, Interval]:
    """Every active product's interval (set, learned or none) and reminder window."""
    skus = [
        r.sku
        for r in tx.execute(
            select(products.c.sku).where(
                products.c.tenant_id == tenant_id, products.c.active.is_(True)
            )
        )
    ]
    chosen = {
        r.sku: r
        for r in tx.execute(
            select(repurchase_intervals).where(repurchase_intervals.c.tenant_id == tenant_id)
        )
    }
    learned = learned_intervals(tx, tenant_id, skus)
    out = {}
    for sku in sorted(skus):
        row = chosen.get(sku)
        found = learned.get(sku)
        out[sku] = Interval(
            sku=sku,
            set_days=row.interval_days if row is not None else None,
            learned_days=found[0] if found else None,
            gaps=found[1] if found else 0,
            window_days=row.window_days if row is not None else DEFAULT_WINDOW_DAYS,
        )
    return out


def _interval_view(item: Interval) -> dict[str, Any]:
    return {
        "sku": item.sku,
        "interval_days": item.days,
        "source": item.source,
        "set_days": item.set_days,
        "learned_days": item.learned_days,
        "gaps": item.gaps,
        "window_days": item.window_days,
    }


def list_intervals(ctx: Ctx) -> list[dict[str, Any]]:
    """Each active product's repurchase interval, where it comes from, and its window."""
    with ctx.db.read() as tx:
        return [_interval_view(i) for i in intervals(tx, ctx.tenant_id).values()]


def _whole(value: Any, low: int, high: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput("repurchase_days_invalid", field=field, low=low, high=high)
    return value


def set_interval(
    ctx: Ctx, *, sku: str, interval_days: int | None, window_days: int | None = None
) -> dict[str, Any]:
    """Fix a product's interval (None: learn it from the orders) and its reminder window."""
    if interval_days is not None:
        _whole(interval_days, 1, MAX_INTERVAL_DAYS, "interval_days")
    window = DEFAULT_WINDOW_DAYS if window_days is None else window_days
    _whole(window, 1, MAX_WINDOW_DAYS, "window_days")
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        found = tx.execute(
            select(products.c.id).where(
                products.c.tenant_id == ctx.tenant_id, products.c.sku == sku
            )
        ).first()
        if found is None:
            raise NotFound("product_not_found", sku=sku)
        dialect = postgresql if tx.dialect.name == "postgresql" else sqlite
        values = {"interval_days": interval_days, "window_days": window, "updated_at": now}
        tx.execute(
            dialect.insert(repurchase_intervals)
            .values(tenant_id=ctx.tenant_id, sku=sku, **values)
            .on_conflict_do_update(index_elements=["tenant_id", "sku"], set_=values)
        )
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="RepurchaseIntervalSet",
            subject_type="product",
            subject_id=found.id,
            payload={"sku": sku, "interval_days": interval_days, "window_days": window},
        )
        item = intervals(tx, ctx.tenant_id).get(sku)
    if item is None:  # an inactive product: its interval is kept for when it is sold again
        item = Interval(sku, interval_days, None, 0, window)
    return _interval_view(item)


# --- who is due --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    member_id: str
    sku: str
    last_paid_at: datetime
    interval_days: int
    window_days: int

    @property
    def due_at(self) -> datetime:
        return self.last_paid_at + timedelta(days=self.interval_days)

    def days_overdue(self, now: datetime) -> int:
        return (now - self.due_at).days


def _due(
    tx: Connection,
    tenant_id: str,
    now: datetime,
    *,
    sku: str | None = None,
    after: str | None = None,
    members_wanted: int | None = None,
) -> list[Due]:
    """Members whose last order of a product with an interval is older than it, in member
    order (`members_wanted` members at most, after the member `after`)."""
    known = {s: i for s, i in intervals(tx, tenant_id).items() if i.days is not None}
    if sku is not None:
        known = {s: i for s, i in known.items() if s == sku}
    if not known:
        return []
    cutoff = case(
        {s: literal(now - timedelta(days=i.days or 0), UTCDateTime()) for s, i in known.items()},
        value=order_lines.c.sku,
    )
    last = func.max(orders.c.paid_at)
    query = (
        select(orders.c.buyer_id, order_lines.c.sku, last.label("last_paid_at"))
        .select_from(_lines_joined())
        .where(
            order_lines.c.tenant_id == tenant_id,
            order_lines.c.sku.in_(sorted(known)),
            _kept_line(),
        )
        .group_by(orders.c.buyer_id, order_lines.c.sku)
        .having(last <= cutoff)
    )
    if after is not None:
        query = query.where(orders.c.buyer_id > after)
    rows = tx.execute(query.order_by(orders.c.buyer_id, order_lines.c.sku)).all()
    out: list[Due] = []
    seen: list[str] = []
    for row in rows:
        if row.buyer_id not in seen:
            if members_wanted is not None and len(seen) == members_wanted:
                break
            seen.append(row.buyer_id)
        interval = known[row.sku]
        assert interval.days is not None
        out.append(
            Due(row.buyer_id, row.sku, row.last_paid_at, interval.days, interval.window_days)
        )
    return out


def due_page(
    ctx: Ctx, *, sku: str | None = None, after: str | None = None, limit: int = 100
) -> dict[str, Any]:
    """Members past a product's interval, with the product and the days overdue, `limit`
    members per page (each with every product it is due for); pass `next_after` back."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit_out_of_range", low=1, high=MAX_PAGE)
    if after is not None and not after.startswith("mem_"):
        raise InvalidInput("cursor_invalid", field="after")
    now = ctx.clock.now()
    with ctx.db.read() as tx:
        found = _due(tx, ctx.tenant_id, now, sku=sku, after=after, members_wanted=limit + 1)
        ids = sorted({d.member_id for d in found})
        names = (
            dict(
                tx.execute(
                    select(members.c.id, members.c.name).where(
                        members.c.tenant_id == ctx.tenant_id, members.c.id.in_(ids)
                    )
                ).all()
            )
            if ids
            else {}
        )
        reminded = _reminded(tx, ctx.tenant_id, found)
        product_names = dict(
            tx.execute(
                select(products.c.sku, products.c.name).where(products.c.tenant_id == ctx.tenant_id)
            ).all()
        )
    page_members = sorted({d.member_id for d in found})[:limit]
    more = len({d.member_id for d in found}) > limit
    items = [
        {
            "member_id": d.member_id,
            "name": names.get(d.member_id, ""),
            "sku": d.sku,
            "product_name": product_names.get(d.sku, ""),
            "last_paid_at": d.last_paid_at,
            "interval_days": d.interval_days,
            "due_at": d.due_at,
            "days_overdue": d.days_overdue(now),
            "reminded_at": reminded.get((d.member_id, d.sku, d.last_paid_at)),
        }
        for d in found
        if d.member_id in set(page_members)
    ]
    return {"items": items, "next_after": page_members[-1] if more and page_members else None}


def _reminded(
    tx: Connection, tenant_id: str, found: Sequence[Due]
) -> dict[tuple[str, str, datetime], datetime]:
    ids = sorted({d.member_id for d in found})
    if not ids:
        return {}
    r = repurchase_reminders
    rows = tx.execute(
        select(r.c.member_id, r.c.sku, r.c.last_paid_at, r.c.reminded_at).where(
            r.c.tenant_id == tenant_id, r.c.member_id.in_(ids)
        )
    ).all()
    return {(row.member_id, row.sku, row.last_paid_at): row.reminded_at for row in rows}


# --- reminders ---------------------------------------------------------------------------------


def send_reminders(ctx: Ctx, *, sku: str | None = None, limit: int = 1_000) -> dict[str, Any]:
    """Remind every due member not yet reminded for the purchase that made it due (at most
    `limit`): a reminder is kept, and a task goes to the outbox for the member's staff
    account (an operator's task, or its channel). Sending again reminds nobody twice."""
    if not 1 <= limit <= MAX_REMINDERS:
        raise InvalidInput("limit_out_of_range", low=1, high=MAX_REMINDERS)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        settings = load_settings(tx, ctx.tenant_id)
        found = _due(tx, ctx.tenant_id, now, sku=sku)
        done = _reminded(tx, ctx.tenant_id, found)
        fresh = [d for d in found if (d.member_id, d.sku, d.last_paid_at) not in done][:limit]
        if not fresh:
            return {"reminded": 0, "queued": 0}
        ids = sorted({d.member_id for d in fresh})
        staff = dict(
            tx.execute(
                select(staff_assignments.c.member_id, staff_assignments.c.staff_account_id).where(
                    staff_assignments.c.tenant_id == ctx.tenant_id,
                    staff_assignments.c.member_id.in_(ids),
                )
            ).all()
        )
        names = dict(
            tx.execute(
                select(members.c.id, members.c.name).where(
                    members.c.tenant_id == ctx.tenant_id, members.c.id.in_(ids)
                )
            ).all()
        )
        product_names = dict(
            tx.execute(
                select(products.c.sku, products.c.name).where(products.c.tenant_id == ctx.tenant_id)
            ).all()
        )
        rows = [
            {
                "tenant_id": ctx.tenant_id,
                "id": new_id("rmd"),
                "member_id": d.member_id,
                "sku": d.sku,
                "last_paid_at": d.last_paid_at,
                "due_at": d.due_at,
                "reminded_at": now,
                "counts_until": now + timedelta(days=d.window_days),
                "task_id": None,
            }
            for d in fresh
        ]
        locale: Locale = "en" if settings.locale == "en" else "zh_CN"
        keys = {}
        messages = []
        for d, row in zip(fresh, rows, strict=True):
            key = f"repurchase:{d.member_id}:{d.sku}:{d.last_paid_at:%Y%m%d%H%M%S}"[:120]
            keys[key] = row
            messages.append(
                Message(
                    dedupe_key=key,
                    kind=REMINDER_KIND,
                    body=translate_in(
                        locale,
                        "repurchase.reminder_body",
                        member=names.get(d.member_id, d.member_id),
                        product=product_names.get(d.sku, d.sku),
                        days=d.days_overdue(now),
                    ),
                    staff_account_id=staff.get(d.member_id),
                    member_id=d.member_id,
                    payload={"sku": d.sku, "reminder_id": row["id"]},
                )
            )
        queued = enqueue_messages(tx, tenant_id=ctx.tenant_id, at=now, messages=messages)
        for task_id, key in tx.execute(
            select(outbox_messages.c.id, outbox_messages.c.dedupe_key).where(
                outbox_messages.c.tenant_id == ctx.tenant_id,
                outbox_messages.c.dedupe_key.in_(sorted(keys)),
            )
        ).all():
            keys[key]["task_id"] = task_id
        tx.execute(repurchase_reminders.insert(), rows)
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="RepurchaseReminded",
            subject_type="tenant",
            subject_id=ctx.tenant_id,
            payload={"reminded": len(rows), "queued": len(queued), "sku": sku},
        )
    return {"reminded": len(rows), "queued": len(queued)}


# --- the revenue mix ---------------------------------------------------------------------------

CHANNELS = ("reminded_repurchase", "repurchase", "referral", "other")


def _before(one: Any, other: Any) -> ColumnElement[bool]:
    """Order `one` was paid before `other` (orders paid in the same instant in id order)."""
    return or_(
        one.c.paid_at < other.c.paid_at,
        and_(one.c.paid_at == other.c.paid_at, one.c.id < other.c.id),
    )


def revenue_mix(ctx: Ctx, *, start: datetime | str, end: datetime | str) -> dict[str, Any]:
    """The orders paid in [`start`, `end`) by where they came from: a member's first order
    came by referral (it was bound to a referrer, or a sharer is attributed) or otherwise
    (ads, walk-ins); a later one is a repurchase, reminded when it is the member's next order
    of a reminded product within the reminder's window. Revenue is paid less refunded. Dates
    and times without an offset are the tenant's (`parse_period`)."""
    if isinstance(start, str) or isinstance(end, str):
        with ctx.db.read() as tx:
            zone = load_settings(tx, ctx.tenant_id).time_zone
        start, end = parse_period(str(start), str(end), zone)
    if not start < end or end - start > timedelta(days=MAX_MIX_DAYS):
        raise InvalidInput("period_invalid", max_days=MAX_MIX_DAYS)
    o = orders
    earlier = orders.alias("earlier")
    first = ~exists().where(
        earlier.c.tenant_id == o.c.tenant_id,
        earlier.c.buyer_id == o.c.buyer_id,
        _before(earlier, o),
        earlier.c.status != "cancelled",
    )
    r = repurchase_reminders
    line = order_lines.alias("line")
    between = orders.alias("between")
    between_line = order_lines.alias("between_line")
    reminded = exists().where(
        r.c.tenant_id == o.c.tenant_id,
        r.c.member_id == o.c.buyer_id,
        o.c.paid_at > r.c.reminded_at,
        o.c.paid_at <= r.c.counts_until,
        exists()
        .where(line.c.tenant_id == o.c.tenant_id, line.c.order_id == o.c.id, line.c.sku == r.c.sku)
        .correlate(o, r),
        # Only the next order of the product after the reminder (the nested queries name the
        # outer order explicitly: they are two levels down).
        ~exists()
        .where(
            between.c.tenant_id == o.c.tenant_id,
            between.c.buyer_id == o.c.buyer_id,
            between.c.paid_at > r.c.reminded_at,
            _before(between, o),
            between.c.status != "cancelled",
            between_line.c.tenant_id == between.c.tenant_id,
            between_line.c.order_id == between.c.id,
            between_line.c.sku == r.c.sku,
        )
        .correlate(o, r),
    )
    referred = or_(members.c.referrer_id.is_not(None), o.c.attributed_sharer_id.is_not(None))
    channel = case(
        (and_(first, referred), "referral"),
        (first, "other"),
        (reminded, "reminded_repurchase"),
        else_="repurchase",
    ).label("channel")
    classified = (
        select(channel, (o.c.paid_fen - o.c.refunded_fen).label("revenue"))
        .select_from(
            o.join(
                members, and_(members.c.tenant_id == o.c.tenant_id, members.c.id == o.c.buyer_id)
            )
        )
        .where(
            o.c.tenant_id == ctx.tenant_id,
            o.c.paid_at >= start,
            o.c.paid_at < end,
            o.c.status != "cancelled",
        )
        .subquery("classified")
    )
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(
                classified.c.channel,
                func.count(),
                func.coalesce(func.sum(classified.c.revenue), 0),
            ).group_by(classified.c.channel)
        ).all()
    found = {str(c): (int(n), int(v)) for c, n, v in rows}
    total = sum(v for _, v in found.values())
    return {
        "from": start,
        "to": end,
        "orders": sum(n for n, _ in found.values()),
        "revenue_fen": total,
        "channels": [
            {
                "channel": name,
                "orders": found.get(name, (0, 0))[0],
                "revenue_fen": found.get(name, (0, 0))[1],
                "share_bp": found.get(name, (0, 0))[1] * 10_000 // total if total else 0,
            }
            for name in CHANNELS
        ],
    }
