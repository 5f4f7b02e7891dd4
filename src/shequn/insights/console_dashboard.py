"""The console's dashboard: sales of a period day by day, where the revenue came from (ads,
repurchase, referral), the self-circulation funnel, commission cost, compliance and alerts.
Each figure is one aggregate statement."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, case, func, literal_column, or_, select
from sqlalchemy.sql import ColumnElement

from shequn.context import Ctx
from shequn.distribution.tables import commission_lines
from shequn.members.tables import members
from shequn.orders.tables import orders
from shequn.tenancy.repo import load_settings
from shequn.tenancy.rules import local_day_start
from shequn.wallet.tables import withdrawals

PERIODS = (7, 30, 90)


def local_day(column: Any, dialect: str, time_zone: str, at: datetime) -> ColumnElement[str]:
    """The tenant-local calendar day (`YYYY-MM-DD`) of a timestamp column. PostgreSQL reads the
    zone's own rules; SQLite, which has none, shifts by the zone's offset at `at`."""
    if dialect == "postgresql":
        return func.to_char(func.timezone(time_zone, column), "YYYY-MM-DD")
    offset = at.astimezone(ZoneInfo(time_zone)).utcoffset() or timedelta()
    minutes = int(offset.total_seconds() // 60)
    return func.date(column, f"{minutes:+d} minutes")


def period_start(now: datetime, days: int, time_zone: str) -> datetime:
    """The start of the first of the `days` local days that end today."""
    return local_day_start(now - timedelta(days=days - 1), time_zone)


def _days(now: datetime, days: int, time_zone: str) -> list[str]:
    today = now.astimezone(ZoneInfo(time_zone)).date()
    return [(today - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]


def sales_by_day(
    tx: Connection, tenant_id: str, *, since: datetime, time_zone: str, at: datetime
) -> list[Any]:
    """Per local day of the orders placed since `since`: paid orders, paid and refunded
    amounts, and the paid amount by source. A buyer's order paid after its first paid order is
    repurchase; a first order is referral when the buyer was referred or a sharer was named,
    else it came from ads (or the brand's own channels)."""
    day = local_day(orders.c.created_at, tx.dialect.name, time_zone, at).label("day")
    repeat = orders.c.paid_at > members.c.first_paid_at
    referred = or_(members.c.referrer_id.is_not(None), orders.c.attributed_sharer_id.is_not(None))
    paid = orders.c.paid_fen
    return list(
        tx.execute(
            select(
                day,
                func.count(orders.c.paid_at).label("orders"),
                func.coalesce(func.sum(paid), 0).label("paid_fen"),
                func.coalesce(func.sum(orders.c.refunded_fen), 0).label("refunded_fen"),
                func.coalesce(func.sum(case((repeat, paid), else_=0)), 0).label("repurchase"),
                func.coalesce(func.sum(case((and_(~repeat, referred), paid), else_=0)), 0).label(
                    "referral"
                ),
            )
            .select_from(
                orders.join(
                    members,
                    and_(
                        members.c.tenant_id == orders.c.tenant_id, members.c.id == orders.c.buyer_id
                    ),
                )
            )
            .where(
                orders.c.tenant_id == tenant_id,
                orders.c.created_at >= since,
                orders.c.paid_at.is_not(None),
            )
            .group_by(literal_column("day"))
        ).all()
    )


def funnel(tx: Connection, tenant_id: str) -> dict[str, int]:
    """came → bought → bought again → referred a buyer, over every member."""
    buyers = (
        select(members.c.referrer_id)
        .where(
            members.c.tenant_id == tenant_id,
            members.c.referrer_id.is_not(None),
            members.c.lifetime_order_count > 0,
        )
        .distinct()
        .subquery()
    )
    came, bought, again = tx.execute(
        select(
            func.count(),
            func.count(members.c.first_paid_at),
            func.coalesce(func.sum(case((members.c.lifetime_order_count >= 2, 1), else_=0)), 0),
        ).where(members.c.tenant_id == tenant_id)
    ).one()
    referred = tx.execute(select(func.count()).select_from(buyers)).scalar_one()
    return {
        "came": int(came),
        "bought": int(bought),
        "bought_again": int(again),
        "referred_buyer": int(referred),
    }


def dashboard(ctx: Ctx, *, days: int = 30) -> dict[str, Any]:
    """Everything the dashboard shows for the last `days` local days, computed now (the
    console reads it through `recent_dashboard`)."""
    if days not in PERIODS:
        days = 30
    now = ctx.clock.now()
    t = ctx.tenant_id
    with ctx.db.read() as tx:
        settings = load_settings(tx, t)
        tz = settings.time_zone
        since = period_start(now, days, tz)
        rows = {r.day: r for r in sales_by_day(tx, t, since=since, time_zone=tz, at=now)}
        new_members = tx.execute(
            select(func.count()).where(members.c.tenant_id == t, members.c.created_at >= since)
        ).scalar_one()
        net = (
            commission_lines.c.amount_fen
            - commission_lines.c.cancelled_fen
            - commission_lines.c.reversed_fen
        )
        commission = tx.execute(
            select(func.coalesce(func.sum(net), 0)).where(
                commission_lines.c.tenant_id == t, commission_lines.c.created_at >= since
            )
        ).scalar_one()
        waiting = tx.execute(
            select(func.count(), func.coalesce(func.sum(withdrawals.c.amount_fen), 0)).where(
                withdrawals.c.tenant_id == t, withdrawals.c.status == "requested"
            )
        ).one()
        circulation = funnel(tx, t)
    series: list[dict[str, Any]] = []
    for day in _days(now, days, tz):
        r = rows.get(day)
        series.append(
            {
                "day": day,
                "orders": int(r.orders) if r else 0,
                "paid_fen": int(r.paid_fen) if r else 0,
                "refunded_fen": int(r.refunded_fen) if r else 0,
                "repurchase_fen": int(r.repurchase) if r else 0,
                "referral_fen": int(r.referral) if r else 0,
            }
        )
    gmv = sum(d["paid_fen"] for d in series)
    repurchase = sum(d["repurchase_fen"] for d in series)
    referral = sum(d["referral_fen"] for d in series)
    return {
        "days": days,
        "since": since,
        "time_zone": tz,
        "gmv_fen": gmv,
        "paid_orders": sum(d["orders"] for d in series),
        "refunded_fen": sum(d["refunded_fen"] for d in series),
        "new_members": int(new_members),
        "series": series,
        "mix": {"ads": gmv - repurchase - referral, "repurchase": repurchase, "referral": referral},
        "commission_fen": int(commission),
        "commission_cost_bp": int(commission) * 10_000 // gmv if gmv else 0,
        "funnel": circulation,
        "withdrawals_waiting": int(waiting[0]),
        "withdrawals_waiting_fen": int(waiting[1]),
        "active_plan_id": settings.active_plan_id,
    }


# The figures scan the period's orders; a dashboard looked at by several operators at once (or
# reloaded) is served from the figures computed less than `FRESH` ago, and figures older than
# that but younger than `STALE` are served while a thread computes new ones.
FRESH = timedelta(seconds=30)
STALE = timedelta(minutes=10)


class DashboardCache:
    def __init__(self) -> None:
        self._figures: dict[tuple[int, str, int], tuple[datetime, dict[str, Any]]] = {}
        self._refreshing: set[tuple[int, str, int]] = set()
        self._lock = threading.Lock()

    def get(self, ctx: Ctx, days: int, *, fresh: bool = False) -> dict[str, Any]:
        key = (id(ctx.db), ctx.tenant_id, days)
        now = ctx.clock.now()
        with self._lock:
            held = self._figures.get(key)
        if held is not None and not fresh:
            at, figures = held
            age = now - at
            if timedelta(0) <= age < FRESH:
                return figures
            if timedelta(0) <= age < STALE:
                self._refresh_later(ctx, days, key)
                return figures
        return self._compute(ctx, days, key)

    def _compute(self, ctx: Ctx, days: int, key: tuple[int, str, int]) -> dict[str, Any]:
        at = ctx.clock.now()
        figures = {**dashboard(ctx, days=days), "computed_at": at}
        with self._lock:
            if len(self._figures) > 1_000:
                self._figures.clear()
            self._figures[key] = (at, figures)
        return figures

    def _refresh_later(self, ctx: Ctx, days: int, key: tuple[int, str, int]) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def refresh() -> None:
            try:
                self._compute(ctx, days, key)
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        threading.Thread(target=refresh, name="shequn-dashboard", daemon=True).start()


_CACHE = DashboardCache()


def recent_dashboard(ctx: Ctx, *, days: int = 30, fresh: bool = False) -> dict[str, Any]:
    """The dashboard's figures as computed at most a few seconds ago (`fresh`: now); the
    figures say when (`computed_at`)."""
    if days not in PERIODS:
        days = 30
    return _CACHE.get(ctx, days, fresh=fresh)
