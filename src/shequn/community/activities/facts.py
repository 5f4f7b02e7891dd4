"""Reading what members did in outside channels: the public read for other capabilities
(badges, tiers, growth stages, group health) and for the API.

    from shequn.community.activities import facts

    facts.activity_facts(tx, tenant_id=…, member_ids=[…])
        → {member_id: {"messages": 12, "check_ins": 21, …}}   (every kind, 0 when none)
    facts.activity_counts(tx, tenant_id=…, member_ids=[…], since=…, kinds=("check_in",))
        → the same over a window of event time
    facts.timeline(tx, tenant_id=…, member_id=…, since=…, kinds=…, limit=…)
        → the member's activities in event-time order

Every count holds each external event once, however often and in whatever order it was
delivered; times are the activities' own (event time).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from shequn.community.activities.rules import FACT_NAMES, ActivityKind
from shequn.community.common import ids_in, view
from shequn.community.tables import activities, member_activity_facts
from shequn.context import Ctx
from shequn.errors import InvalidInput
from shequn.members.repo import require_member

FACT_OF_KIND = {kind.value: name for kind, name in FACT_NAMES.items()}


def _empty() -> dict[str, int]:
    return dict.fromkeys(FACT_OF_KIND.values(), 0)


def activity_facts(
    tx: Connection, *, tenant_id: str, member_ids: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Each member's all-time count of each kind of activity."""
    out = {m: _empty() for m in member_ids}
    if not member_ids:
        return out
    f = member_activity_facts.c
    for member_id, kind, count in tx.execute(
        select(f.member_id, f.kind, f.count).where(
            f.tenant_id == tenant_id, ids_in(tx, f.member_id, list(member_ids))
        )
    ).all():
        out[member_id][FACT_OF_KIND[kind]] = int(count)
    return out


def activity_counts(
    tx: Connection,
    *,
    tenant_id: str,
    member_ids: Sequence[str],
    since: datetime,
    until: datetime | None = None,
    kinds: Sequence[str] | None = None,
) -> dict[str, dict[str, int]]:
    """Each member's count of each kind of activity whose event time is in [since, until)."""
    out = {m: _empty() for m in member_ids}
    if not member_ids:
        return out
    a = activities.c
    query = (
        select(a.member_id, a.kind, func.count())
        .where(
            a.tenant_id == tenant_id,
            ids_in(tx, a.member_id, list(member_ids)),
            a.occurred_at >= since,
        )
        .group_by(a.member_id, a.kind)
    )
    if until is not None:
        query = query.where(a.occurred_at < until)
    if kinds:
        query = query.where(a.kind.in_(list(kinds)))
    for member_id, kind, count in tx.execute(query).all():
        out[member_id][FACT_OF_KIND[kind]] = int(count)
    return out


def timeline(
    tx: Connection,
    *,
    tenant_id: str,
    member_id: str,
    since: datetime | None = None,
    kinds: Sequence[str] | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The member's activities in event-time order (ties by external id)."""
    a = activities.c
    query = select(activities).where(a.tenant_id == tenant_id, a.member_id == member_id)
    if since is not None:
        query = query.where(a.occurred_at >= since)
    if kinds:
        query = query.where(a.kind.in_(list(kinds)))
    rows = tx.execute(query.order_by(a.occurred_at, a.external_id).limit(limit)).all()
    return [view(r) for r in rows]


def member_activity(
    ctx: Ctx, *, member_id: str, kind: str | None = None, limit: int = 200
) -> dict[str, Any]:
    """A member's activity: its counts and first and last times by kind, and its latest
    activities in event-time order."""
    if kind is not None and kind not in {k.value for k in ActivityKind}:
        raise InvalidInput("activity_kind_invalid", kind=kind[:40])
    f = member_activity_facts.c
    with ctx.db.read() as tx:
        require_member(tx, ctx.tenant_id, member_id)
        by_kind = tx.execute(
            select(f.kind, f.count, f.first_at, f.last_at)
            .where(f.tenant_id == ctx.tenant_id, f.member_id == member_id)
            .order_by(f.kind)
        ).all()
        items = timeline(
            tx,
            tenant_id=ctx.tenant_id,
            member_id=member_id,
            kinds=[kind] if kind else None,
            limit=limit,
        )
    return {
        "member_id": member_id,
        "facts": [
            {"kind": r.kind, "count": int(r[1]), "first_at": r.first_at, "last_at": r.last_at}
            for r in by_kind
        ],
        "items": items,
    }
