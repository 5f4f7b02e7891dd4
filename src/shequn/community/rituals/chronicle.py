"""The chronicle (大事记): milestones the system notices (member counts, the first activity,
the first ¥1M month, anniversaries) and entries an operator writes. A milestone is written
once per community, however often it is noticed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from shequn.community.common import insert_ignoring, view
from shequn.community.communities.queries import require_community
from shequn.community.rituals.rules import (
    MILLION_MONTH_FEN,
    anniversaries,
    anniversary_date,
    member_milestones_crossed,
)
from shequn.community.tables import activities, chronicle_entries, community_members
from shequn.context import Ctx
from shequn.errors import InvalidInput
from shequn.events.service import Event, record_events
from shequn.i18n import Locale, translate_in
from shequn.ids import new_id
from shequn.orders.tables import orders
from shequn.tenancy.repo import load_settings

MAX_TITLE = 120
MAX_BODY = 1_000


def _entry(
    tenant_id: str,
    community_id: str,
    *,
    key: str | None,
    title: str,
    body: str,
    occurred_at: datetime,
    actor: str,
    at: datetime,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "id": new_id("chr"),
        "community_id": community_id,
        "kind": "milestone" if key is not None else "manual",
        "milestone_key": key,
        "title": title[:MAX_TITLE],
        "body": body[:MAX_BODY],
        "occurred_at": occurred_at,
        "created_by": actor,
        "created_at": at,
    }


def write_milestones(tx: Connection, rows: Sequence[dict[str, Any]], *, actor: str) -> int:
    """Insert milestone entries, each once per community; records an event for each new one."""
    if not rows:
        return 0
    written = list(
        tx.execute(
            insert_ignoring(tx, chronicle_entries, ("tenant_id", "community_id", "milestone_key"))
            .values(list(rows))
            .returning(chronicle_entries.c.id, chronicle_entries.c.milestone_key)
        ).all()
    )
    if written:
        first = rows[0]
        record_events(
            tx,
            tenant_id=first["tenant_id"],
            actor=actor,
            at=first["created_at"],
            items=[
                Event(
                    "ChronicleEntryAdded",
                    "community",
                    first["community_id"],
                    {"entry_id": r.id, "milestone": r.milestone_key},
                )
                for r in written
            ],
        )
    return len(written)


def member_count_milestones(
    tx: Connection,
    *,
    tenant_id: str,
    community_id: str,
    before: int,
    after: int,
    at: datetime,
    actor: str,
) -> int:
    """Entries for the member counts a community just reached (10, 50, 100, 150, 500 …)."""
    crossed = member_milestones_crossed(before, after)
    if not crossed:
        return 0
    locale = cast(Locale, load_settings(tx, tenant_id).locale)
    rows = [
        _entry(
            tenant_id,
            community_id,
            key=f"members:{count}",
            title=translate_in(locale, "community.chronicle.members", count=count),
            body="",
            occurred_at=at,
            actor=actor,
            at=at,
        )
        for count in crossed
    ]
    return write_milestones(tx, rows, actor=actor)


def refresh_milestones(ctx: Ctx, *, community_id: str) -> dict[str, Any]:
    """Notice what the community reached since: its first activity, each month whose paid
    orders by its members came to ¥1,000,000 (the first one), its anniversaries."""
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        community = require_community(tx, ctx.tenant_id, community_id)
        settings = load_settings(tx, ctx.tenant_id)
        locale = cast(Locale, settings.locale)
        rows: list[dict[str, Any]] = []

        def add(key: str, title: str, occurred_at: datetime) -> None:
            rows.append(
                _entry(
                    ctx.tenant_id,
                    community_id,
                    key=key,
                    title=title,
                    body="",
                    occurred_at=occurred_at,
                    actor=ctx.actor,
                    at=now,
                )
            )

        first_activity = tx.execute(
            select(func.min(activities.c.occurred_at)).where(
                activities.c.tenant_id == ctx.tenant_id, activities.c.community_id == community_id
            )
        ).scalar_one_or_none()
        if first_activity is not None:
            if first_activity.tzinfo is None:
                first_activity = first_activity.replace(tzinfo=UTC)
            add(
                "first_activity",
                translate_in(locale, "community.chronicle.first_activity"),
                first_activity,
            )
        month = _first_million_month(tx, ctx.tenant_id, community_id, settings.time_zone)
        if month is not None:
            label, started = month
            add(
                "first_million_month",
                translate_in(locale, "community.chronicle.million_month", month=label),
                started,
            )
        for years in anniversaries(community.created_at, now):
            add(
                f"anniversary:{years}",
                translate_in(locale, "community.chronicle.anniversary", years=years),
                anniversary_date(community.created_at, years),
            )
        written = write_milestones(tx, rows, actor=ctx.actor)
    return {"community_id": community_id, "noticed": len(rows), "written": written}


def _first_million_month(
    tx: Connection, tenant_id: str, community_id: str, time_zone: str
) -> tuple[str, datetime] | None:
    """The first local month in which the community's members paid ¥1,000,000 or more."""
    paid = tx.execute(
        select(orders.c.paid_at, orders.c.paid_fen - orders.c.refunded_fen)
        .join(
            community_members,
            (community_members.c.tenant_id == orders.c.tenant_id)
            & (community_members.c.member_id == orders.c.buyer_id),
        )
        .where(
            orders.c.tenant_id == tenant_id,
            community_members.c.community_id == community_id,
            orders.c.paid_at.is_not(None),
        )
        .order_by(orders.c.paid_at)
    ).all()
    zone = ZoneInfo(time_zone)
    totals: dict[str, int] = {}
    for paid_at, amount in paid:
        local = paid_at.astimezone(zone)
        label = f"{local.year:04d}-{local.month:02d}"
        totals[label] = totals.get(label, 0) + int(amount)
        if totals[label] >= MILLION_MONTH_FEN:
            start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            return label, start.astimezone(UTC)
    return None


def add_entry(
    ctx: Ctx, *, community_id: str, title: str, body: str = "", occurred_at: datetime | None = None
) -> dict[str, Any]:
    """A manual entry (a founding story, a first offline meetup…)."""
    clean = " ".join(title.split())
    if not clean:
        raise InvalidInput("field_required", field="title")
    if len(clean) > MAX_TITLE or len(body) > MAX_BODY:
        raise InvalidInput("field_too_long", field="title", max=MAX_TITLE)
    now = ctx.clock.now()
    if occurred_at is not None and occurred_at.tzinfo is None:
        raise InvalidInput("datetime_naive", field="occurred_at")
    row = _entry(
        ctx.tenant_id,
        community_id,
        key=None,
        title=clean,
        body=body.strip(),
        occurred_at=occurred_at or now,
        actor=ctx.actor,
        at=now,
    )
    with ctx.db.transaction() as tx:
        require_community(tx, ctx.tenant_id, community_id)
        tx.execute(chronicle_entries.insert().values(row))
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[
                Event("ChronicleEntryAdded", "community", community_id, {"entry_id": row["id"]})
            ],
        )
    return view(row)


def chronicle(ctx: Ctx, *, community_id: str) -> list[dict[str, Any]]:
    """The community's chronicle, oldest first."""
    c = chronicle_entries.c
    with ctx.db.read() as tx:
        require_community(tx, ctx.tenant_id, community_id)
        rows = tx.execute(
            select(chronicle_entries)
            .where(c.tenant_id == ctx.tenant_id, c.community_id == community_id)
            .order_by(c.occurred_at, c.id)
        ).all()
    return [view(r) for r in rows]
