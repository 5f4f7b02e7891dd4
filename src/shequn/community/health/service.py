"""Group health, set-based: for one group or every group of the tenant at once, the 7-day
active ratio, members silent 14 days, drifting members, the top-5 senders' share of messages;
for a group, its customers' messages left unanswered beyond the reply-time SLA counted in its
staff account's working hours; alerts raised on low activity, oversize and slow replies.

Alerts of other parts (the crisis of `shequn.community.complaints`) are raised through
`raise_alert` here: one open alert per subject and kind."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, select, update

from shequn.community.common import ids_in, insert_ignoring, view
from shequn.community.groups.queries import require_group
from shequn.community.health.rules import (
    ACTIVE_DAYS,
    DEFAULT_WORK_END,
    DEFAULT_WORK_START,
    DRIFT_LOOKBACK_DAYS,
    DRIFT_MAX_DAYS,
    DRIFT_MIN_DAYS,
    REPLY_SLA_MINUTES,
    SILENT_DAYS,
    TOP_SENDERS,
    AlertKind,
    Health,
    MemberActivity,
    alerts_for,
    breaches_sla,
    drifting,
    ratio_bp,
)
from shequn.community.health.tables import community_alerts
from shequn.community.tables import activities, community_members, groups, staff_accounts
from shequn.context import Ctx
from shequn.errors import InvalidInput, NotFound
from shequn.events.service import Event, record_events
from shequn.ids import checked_cursor, new_id
from shequn.tenancy.repo import load_settings

SCAN_CHUNK = 2_000
MAX_ALERTS = 200


def health_query(tenant_id: str, now: datetime, group_ids: Sequence[str] | None = None) -> Any:
    """One statement: every group's size, active (7 d), silent (14 d), drifting and top-5
    share, from its members and their activities in it over the drift lookback."""
    c, a, _g = community_members.c, activities.c, groups.c
    lookback = now - timedelta(days=DRIFT_LOOKBACK_DAYS)
    week = now - timedelta(days=ACTIVE_DAYS)
    fortnight = now - timedelta(days=SILENT_DAYS)
    drift_new = now - timedelta(days=DRIFT_MIN_DAYS)
    drift_old = now - timedelta(days=DRIFT_MAX_DAYS)
    grouped = (
        select(
            a.group_id,
            a.member_id,
            func.count().label("n"),
            func.max(a.occurred_at).label("last_at"),
            func.sum(case((and_(a.kind == "message", a.occurred_at >= week), 1), else_=0)).label(
                "messages"
            ),
        )
        .where(
            a.tenant_id == tenant_id,
            a.group_id.is_not(None),
            a.member_id.is_not(None),
            a.occurred_at >= lookback,
            a.occurred_at <= now,
        )
        .group_by(a.group_id, a.member_id)
    )
    if group_ids is not None:
        grouped = grouped.where(a.group_id.in_(list(group_ids)))
    per_member = grouped.subquery("per_member")
    placed = select(c.group_id, c.member_id).where(
        c.tenant_id == tenant_id, c.group_id.is_not(None)
    )
    if group_ids is not None:
        placed = placed.where(c.group_id.in_(list(group_ids)))
    placed_sq = placed.subquery("placed")
    n = func.coalesce(per_member.c.n, 0)
    msgs = func.coalesce(per_member.c.messages, 0)
    ranked = (
        select(
            placed_sq.c.group_id,
            placed_sq.c.member_id,
            n.label("n"),
            msgs.label("messages"),
            per_member.c.last_at,
            func.row_number()
            .over(partition_by=placed_sq.c.group_id, order_by=(n.desc(), placed_sq.c.member_id))
            .label("activity_rank"),
            func.row_number()
            .over(partition_by=placed_sq.c.group_id, order_by=(msgs.desc(), placed_sq.c.member_id))
            .label("message_rank"),
            func.count().over(partition_by=placed_sq.c.group_id).label("size"),
        )
        .select_from(placed_sq)
        .outerjoin(
            per_member,
            and_(
                per_member.c.group_id == placed_sq.c.group_id,
                per_member.c.member_id == placed_sq.c.member_id,
            ),
        )
        .subquery("ranked")
    )
    r = ranked.c
    one = literal(1)
    return (
        select(
            r.group_id,
            func.count().label("size"),
            func.sum(case((r.last_at >= week, one), else_=0)).label("active_7d"),
            func.sum(case((r.last_at >= fortnight, 0), else_=one)).label("silent_14d"),
            func.sum(
                case(
                    (
                        and_(
                            r.n > 0,
                            r.activity_rank <= (r.size + 3) / 4,
                            r.last_at >= drift_old,
                            r.last_at < drift_new,
                        ),
                        one,
                    ),
                    else_=0,
                )
            ).label("drifting"),
            func.sum(case((r.message_rank <= TOP_SENDERS, r.messages), else_=0)).label("top5"),
            func.sum(r.messages).label("messages"),
        )
        .group_by(r.group_id)
        .order_by(r.group_id)
    )


def _unanswered(
    tx: Connection,
    tenant_id: str,
    group: Any,
    now: datetime,
    *,
    sla_minutes: int,
    time_zone: str,
) -> list[dict[str, Any]]:
    """The group's customers' messages of the last 7 days not answered within the SLA (in
    working minutes of its staff account), oldest first."""
    work_start, work_end = DEFAULT_WORK_START, DEFAULT_WORK_END
    if group.staff_account_id is not None:
        hours = tx.execute(
            select(staff_accounts.c.work_start, staff_accounts.c.work_end).where(
                staff_accounts.c.tenant_id == tenant_id,
                staff_accounts.c.id == group.staff_account_id,
            )
        ).first()
        if hours is not None:
            work_start, work_end = int(hours.work_start), int(hours.work_end)
    a = activities.c
    since = now - timedelta(days=ACTIVE_DAYS)
    rows = tx.execute(
        select(a.kind, a.member_id, a.target_member_id, a.occurred_at)
        .where(
            a.tenant_id == tenant_id,
            a.group_id == group.id,
            a.kind.in_(["message", "reply"]),
            a.occurred_at >= since,
            a.occurred_at <= now,
        )
        .order_by(a.occurred_at, a.external_id)
    ).all()
    replies: dict[str, list[datetime]] = {}
    for r in rows:
        if r.kind == "reply" and r.target_member_id is not None:
            replies.setdefault(r.target_member_id, []).append(r.occurred_at)
    out = []
    for r in rows:
        if r.kind != "message" or r.member_id is None:
            continue
        answered = next((t for t in replies.get(r.member_id, []) if t >= r.occurred_at), None)
        if answered is None and breaches_sla(
            r.occurred_at,
            None,
            now=now,
            sla_minutes=sla_minutes,
            time_zone=time_zone,
            work_start=work_start,
            work_end=work_end,
        ):
            out.append({"member_id": r.member_id, "asked_at": r.occurred_at})
    return out


def _health_dict(row: Any, cap: int, unanswered: int) -> tuple[dict[str, Any], Health]:
    size = int(row.size) if row is not None else 0
    active = int(row.active_7d or 0) if row is not None else 0
    silent = int(row.silent_14d or 0) if row is not None else 0
    drifts = int(row.drifting or 0) if row is not None else 0
    top5 = ratio_bp(int(row.top5 or 0), int(row.messages or 0)) if row is not None else 0
    health = Health(size, cap, active, silent, drifts, top5, unanswered)
    return {
        "size": size,
        "cap": cap,
        "active_7d": active,
        "active_ratio_bp": ratio_bp(active, size),
        "silent_14d": silent,
        "drifting": drifts,
        "top5_share_bp": top5,
        "messages_7d": int(row.messages or 0) if row is not None else 0,
        "unanswered": unanswered,
    }, health


def group_health(
    ctx: Ctx, *, group_id: str, sla_minutes: int = REPLY_SLA_MINUTES
) -> dict[str, Any]:
    """A group's health and the alerts its figures call for (not raised: `scan_health`)."""
    if not 1 <= sla_minutes <= 24 * 60:
        raise InvalidInput("reply_sla_invalid", max=24 * 60)
    now = ctx.clock.now()
    with ctx.db.read() as tx:
        group = require_group(tx, ctx.tenant_id, group_id)
        zone = load_settings(tx, ctx.tenant_id).time_zone
        row = tx.execute(health_query(ctx.tenant_id, now, [group_id])).first()
        waiting = _unanswered(
            tx, ctx.tenant_id, group, now, sla_minutes=sla_minutes, time_zone=zone
        )
        drifting_ids = _drifting_members(tx, ctx.tenant_id, group_id, now)
    shown, health = _health_dict(row, int(group.cap), len(waiting))
    return {
        "group_id": group_id,
        "at": now,
        **shown,
        "drifting_members": drifting_ids,
        "unanswered_messages": waiting[:50],
        "alerts": [k.value for k in alerts_for(health)],
    }


def _drifting_members(tx: Connection, tenant_id: str, group_id: str, now: datetime) -> list[str]:
    c, a = community_members.c, activities.c
    placed = list(
        tx.execute(
            select(c.member_id).where(c.tenant_id == tenant_id, c.group_id == group_id)
        ).scalars()
    )
    counts = {
        r.member_id: (int(r[1]), r[2])
        for r in tx.execute(
            select(a.member_id, func.count(), func.max(a.occurred_at))
            .where(
                a.tenant_id == tenant_id,
                a.group_id == group_id,
                a.member_id.is_not(None),
                a.occurred_at >= now - timedelta(days=DRIFT_LOOKBACK_DAYS),
                a.occurred_at <= now,
            )
            .group_by(a.member_id)
        ).all()
    }
    return drifting(
        [MemberActivity(m, *counts.get(m, (0, None))) for m in placed],
        now,
    )


def raise_alert(
    tx: Connection,
    *,
    tenant_id: str,
    kind: AlertKind,
    subject_type: str,
    subject_id: str,
    details: Mapping[str, Any],
    at: datetime,
) -> tuple[str, bool]:
    """Open an alert for the subject, or bring the open one's details up to date; returns
    (alert id, new)."""
    key = f"{kind.value}:{subject_type}:{subject_id}"[:120]
    written = tx.execute(
        insert_ignoring(tx, community_alerts, ("tenant_id", "dedupe_key"))
        .values(
            tenant_id=tenant_id,
            id=new_id("alrt"),
            kind=kind.value,
            dedupe_key=key,
            subject_type=subject_type,
            subject_id=subject_id,
            status="open",
            details=dict(details),
            created_at=at,
            updated_at=at,
            resolved_at=None,
        )
        .returning(community_alerts.c.id)
    ).first()
    al = community_alerts.c
    if written is not None:
        record_events(
            tx,
            tenant_id=tenant_id,
            actor="system",
            at=at,
            items=[
                Event(
                    "CommunityAlertRaised",
                    subject_type,
                    subject_id,
                    {"alert_id": written.id, "kind": kind.value},
                )
            ],
        )
        return str(written.id), True
    tx.execute(
        update(community_alerts)
        .where(al.tenant_id == tenant_id, al.dedupe_key == key)
        .values(details=dict(details), updated_at=at)
    )
    alert_id = tx.execute(
        select(al.id).where(al.tenant_id == tenant_id, al.dedupe_key == key)
    ).scalar_one()
    return str(alert_id), False


def resolve_alerts_in(
    tx: Connection,
    *,
    tenant_id: str,
    kind: AlertKind,
    subject_type: str,
    subject_id: str,
    at: datetime,
) -> None:
    """Close the subject's open alert of `kind`, freeing its key for the next one."""
    al = community_alerts.c
    key = f"{kind.value}:{subject_type}:{subject_id}"[:120]
    row = tx.execute(select(al.id).where(al.tenant_id == tenant_id, al.dedupe_key == key)).first()
    if row is not None:
        tx.execute(
            update(community_alerts)
            .where(al.tenant_id == tenant_id, al.id == row.id)
            .values(
                status="resolved", resolved_at=at, updated_at=at, dedupe_key=f"{key}:{row.id}"[:120]
            )
        )


def slow_reply_groups(
    tx: Connection, tenant_id: str, now: datetime, *, sla_minutes: int = REPLY_SLA_MINUTES
) -> dict[str, int]:
    """Groups with customers' messages of the last 7 days unanswered beyond the SLA: the
    candidates (no later reply to the member in the group, older than the SLA on the clock,
    which working minutes never exceed) in one statement, then each checked in working
    minutes of its group's staff account."""
    a = activities.c
    reply = activities.alias("reply")
    r = reply.c
    candidates = tx.execute(
        select(a.group_id)
        .where(
            a.tenant_id == tenant_id,
            a.kind == "message",
            a.group_id.is_not(None),
            a.member_id.is_not(None),
            a.occurred_at >= now - timedelta(days=ACTIVE_DAYS),
            a.occurred_at <= now - timedelta(minutes=sla_minutes),
            ~select(r.id)
            .where(
                r.tenant_id == a.tenant_id,
                r.group_id == a.group_id,
                r.kind == "reply",
                r.target_member_id == a.member_id,
                r.occurred_at >= a.occurred_at,
            )
            .exists(),
        )
        .group_by(a.group_id)
        .order_by(a.group_id)
    ).scalars()
    zone = load_settings(tx, tenant_id).time_zone
    out: dict[str, int] = {}
    for group_id in candidates:
        group = require_group(tx, tenant_id, group_id)
        waiting = _unanswered(tx, tenant_id, group, now, sla_minutes=sla_minutes, time_zone=zone)
        if waiting:
            out[group_id] = len(waiting)
    return out


def all_group_health(ctx: Ctx) -> dict[str, dict[str, Any]]:
    """Every group's health figures (without the reply-time SLA), in one set-based statement
    over all the tenant's groups."""
    now = ctx.clock.now()
    g = groups.c
    with ctx.db.read() as tx:
        caps = dict(tx.execute(select(g.id, g.cap).where(g.tenant_id == ctx.tenant_id)).all())
        rows = {r.group_id: r for r in tx.execute(health_query(ctx.tenant_id, now))}
    return {gid: _health_dict(rows.get(gid), int(cap), 0)[0] for gid, cap in sorted(caps.items())}


def scan_health(ctx: Ctx, *, progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Every group's health, set-based, raising alerts on low activity, oversize and slow
    replies (and closing those no longer true), a chunk of groups per transaction."""
    now = ctx.clock.now()
    figures = all_group_health(ctx)
    with ctx.db.read() as tx:
        slow = slow_reply_groups(tx, ctx.tenant_id, now)
    ids = list(figures)
    raised = 0
    for start in range(0, len(ids), SCAN_CHUNK):
        chunk = ids[start : start + SCAN_CHUNK]
        with ctx.db.transaction() as tx:
            for group_id in chunk:
                shown = figures[group_id]
                health = Health(
                    shown["size"],
                    shown["cap"],
                    shown["active_7d"],
                    shown["silent_14d"],
                    shown["drifting"],
                    shown["top5_share_bp"],
                    slow.get(group_id, 0),
                )
                wanted = set(alerts_for(health))
                details = {**shown, "unanswered": slow.get(group_id, 0)}
                for kind in (AlertKind.LOW_ACTIVITY, AlertKind.OVERSIZE, AlertKind.SLOW_REPLIES):
                    if kind in wanted:
                        _, new = raise_alert(
                            tx,
                            tenant_id=ctx.tenant_id,
                            kind=kind,
                            subject_type="group",
                            subject_id=group_id,
                            details=details,
                            at=now,
                        )
                        raised += new
                    else:
                        resolve_alerts_in(
                            tx,
                            tenant_id=ctx.tenant_id,
                            kind=kind,
                            subject_type="group",
                            subject_id=group_id,
                            at=now,
                        )
        if progress is not None:
            progress(len(chunk))
    return {"groups": len(ids), "alerts_raised": raised}


def list_alerts(
    ctx: Ctx,
    *,
    status: str | None = "open",
    kind: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Alerts newest first (open ones unless `status` says otherwise)."""
    after = checked_cursor(after, "alrt")
    if status is not None and status not in ("open", "resolved"):
        raise InvalidInput("alert_status_invalid", status=status[:20])
    if kind is not None and kind not in set(AlertKind):
        raise InvalidInput("alert_kind_invalid", kind=kind[:20])
    limit = max(1, min(limit, MAX_ALERTS))
    al = community_alerts.c
    q = select(community_alerts).where(al.tenant_id == ctx.tenant_id)
    if status is not None:
        q = q.where(al.status == status)
    if kind is not None:
        q = q.where(al.kind == kind)
    if after is not None:
        q = q.where(al.id < after)
    with ctx.db.read() as tx:
        rows = tx.execute(q.order_by(al.id.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    return {
        "items": [view(r, drop=("dedupe_key",)) for r in page],
        "next_after": page[-1].id if len(rows) > limit else None,
    }


def require_alert(tx: Connection, tenant_id: str, alert_id: str) -> Any:
    al = community_alerts.c
    row = tx.execute(
        select(community_alerts).where(al.tenant_id == tenant_id, al.id == alert_id)
    ).first()
    if row is None:
        raise NotFound("alert_not_found", id=alert_id)
    return row


def alerts_for_ids(tx: Connection, tenant_id: str, ids: Sequence[str]) -> list[dict[str, Any]]:
    al = community_alerts.c
    rows = tx.execute(
        select(community_alerts).where(al.tenant_id == tenant_id, ids_in(tx, al.id, list(ids)))
    ).all()
    return [view(r, drop=("dedupe_key",)) for r in rows]
