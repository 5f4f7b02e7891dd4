"""What each venue (场) of a community brought in, by the role it plays: the activities of
the venue and of its groups over a window, under the report its role feeds (feedback from an
R&D venue goes to product reviews, a complaint in an emotional venue is escalated sooner)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, select

from shequn.community.communities.queries import require_community
from shequn.community.communities.rules import routing_for, venue_role
from shequn.community.tables import activities, groups, venues
from shequn.context import Ctx
from shequn.errors import InvalidInput

MAX_DAYS = 366


def venue_report(ctx: Ctx, *, community_id: str, days: int = 30) -> dict[str, Any]:
    """Per venue: its kind, role, what the role feeds, and its activities by kind over the
    last `days`; and the activity each report receives in total."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput("days_invalid", max=MAX_DAYS)
    since = ctx.clock.now() - timedelta(days=days)
    v, a, g = venues.c, activities.c, groups.c
    with ctx.db.read() as tx:
        require_community(tx, ctx.tenant_id, community_id)
        rows = tx.execute(
            select(v.id, v.name, v.kind, v.role)
            .where(v.tenant_id == ctx.tenant_id, v.community_id == community_id)
            .order_by(v.id)
        ).all()
        venue_ids = [r.id for r in rows]
        direct = tx.execute(
            select(a.venue_id, a.kind, func.count())
            .where(a.tenant_id == ctx.tenant_id, a.venue_id.in_(venue_ids), a.occurred_at >= since)
            .group_by(a.venue_id, a.kind)
        ).all()
        # an activity of a group that names no venue is its group's venue's
        through_groups = tx.execute(
            select(g.venue_id, a.kind, func.count())
            .join(groups, and_(g.tenant_id == a.tenant_id, g.id == a.group_id))
            .where(
                a.tenant_id == ctx.tenant_id,
                a.venue_id.is_(None),
                g.community_id == community_id,
                g.venue_id.is_not(None),
                a.occurred_at >= since,
            )
            .group_by(g.venue_id, a.kind)
        ).all()
        counts = [*direct, *through_groups]
    by_venue: dict[str, dict[str, int]] = {}
    for venue_id, kind, n in counts:
        seen_kinds = by_venue.setdefault(venue_id, {})
        seen_kinds[kind] = seen_kinds.get(kind, 0) + int(n)
    items = []
    feeds: dict[str, int] = {}
    for row in rows:
        routing = routing_for(venue_role(row.role))
        seen = by_venue.get(row.id, {})
        items.append(
            {
                "venue_id": row.id,
                "name": row.name,
                "kind": row.kind,
                "role": row.role,
                "feeds": routing.feeds,
                "complaint_escalation_pct": routing.complaint_escalation_pct,
                "activities": dict(sorted(seen.items())),
                "total": sum(seen.values()),
            }
        )
        feeds[routing.feeds] = feeds.get(routing.feeds, 0) + sum(seen.values())
    return {
        "community_id": community_id,
        "days": days,
        "venues": items,
        "by_feed": dict(sorted(feeds.items())),
    }
