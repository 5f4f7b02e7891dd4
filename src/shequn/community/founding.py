"""Founding a community: its six elements, its join code and first group; its venues with their
kinds and roles; reading them back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from shequn.community.common import ids_in, random_code, view
from shequn.community.communities.queries import require_community
from shequn.community.communities.rules import (
    DEFAULT_GROUP_PATTERN,
    MemberRole,
    check_group_pattern,
    clean_text,
    platform_limit,
    routing_for,
    venue_kind,
    venue_role,
)
from shequn.community.groups.queries import opened_rows
from shequn.community.groups.rules import (
    DEFAULT_SIZE_CLASS,
    OpenedGroup,
    Policy,
    hard_cap,
    size_class_of,
)
from shequn.community.tables import communities, community_members, groups, venues
from shequn.context import Ctx
from shequn.db import violated_constraint
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import Event, record_events
from shequn.ids import checked_cursor, new_id
from shequn.members.tables import members

JOIN_CODE_LENGTH = 12
MAX_LEADERS = 20


def _venue_view(row: Any) -> dict[str, Any]:
    shown = view(row)
    routing = routing_for(venue_role(row.role))
    shown["routing"] = {
        "feeds": routing.feeds,
        "complaint_escalation_pct": routing.complaint_escalation_pct,
    }
    return shown


def community_view(tx: Any, tenant_id: str, row: Any) -> dict[str, Any]:
    c = community_members.c
    leaders = (
        tx.execute(
            select(c.member_id)
            .where(
                c.tenant_id == tenant_id,
                c.community_id == row.id,
                c.role == MemberRole.LEADER.value,
            )
            .order_by(c.joined_at, c.member_id)
        )
        .scalars()
        .all()
    )
    g = groups.c
    counts = tx.execute(
        select(func.count(), func.coalesce(func.sum(case((g.size > g.cap, 1), else_=0)), 0))
        .select_from(groups)
        .where(g.tenant_id == tenant_id, g.community_id == row.id)
    ).one()
    shown = view(row, drop=("next_group_number",))
    shown["leaders"] = list(leaders)
    shown["group_count"] = int(counts[0])
    shown["oversize_groups"] = int(counts[1])
    return shown


def create_community(
    ctx: Ctx,
    *,
    name: str,
    target_segment: str = "",
    mission: str = "",
    vehicle: str = "",
    member_title: str = "",
    symbol: str = "",
    group_name_pattern: str | None = None,
    size_class: int = DEFAULT_SIZE_CLASS,
    leaders: Sequence[str] = (),
) -> dict[str, Any]:
    """A community (人 target segment, 命 mission, 器 vehicle, 仪 member title and symbol,
    领 leaders) with its join code and its first, empty group."""
    fields: dict[str, Any] = {
        "name": clean_text(name, field="name", max_length=80, required=True),
        "target_segment": clean_text(target_segment, field="target_segment", max_length=200),
        "mission": clean_text(mission, field="mission", max_length=500),
        "vehicle": clean_text(vehicle, field="vehicle", max_length=200),
        "member_title": clean_text(member_title, field="member_title", max_length=40),
        "symbol": clean_text(symbol, field="symbol", max_length=80),
        "group_name_pattern": check_group_pattern(group_name_pattern or DEFAULT_GROUP_PATTERN),
        "size_class": size_class_of(size_class),
    }
    leader_ids = sorted(set(leaders))
    if len(leader_ids) > MAX_LEADERS:
        raise InvalidInput("too_many_leaders", max=MAX_LEADERS)
    now = ctx.clock.now()
    community_id = new_id("cmty")
    row: dict[str, Any] = {
        "tenant_id": ctx.tenant_id,
        "id": community_id,
        **fields,
        "venue_id": None,
        "join_code": random_code(JOIN_CODE_LENGTH),
        "member_count": len(leader_ids),
        "next_group_number": 2,
        "created_at": now,
        "updated_at": now,
    }
    first_group = opened_rows(
        _Row(row),
        [OpenedGroup(new_id("grp"), 1, None, fields["size_class"])],
        Policy.FILL,
        at=now,
    )[0]
    try:
        with ctx.db.transaction() as tx:
            if leader_ids:
                found = set(
                    tx.execute(
                        select(members.c.id).where(
                            members.c.tenant_id == ctx.tenant_id,
                            ids_in(tx, members.c.id, leader_ids),
                        )
                    ).scalars()
                )
                missing = [m for m in leader_ids if m not in found]
                if missing:
                    raise NotFound("member_not_found", id=missing[0])
            tx.execute(communities.insert().values(row))
            tx.execute(groups.insert().values(first_group))
            if leader_ids:
                tx.execute(
                    community_members.insert(),
                    [
                        {
                            "tenant_id": ctx.tenant_id,
                            "community_id": community_id,
                            "member_id": m,
                            "role": MemberRole.LEADER.value,
                            "group_id": None,
                            "region": None,
                            "placed_by": None,
                            "joined_at": now,
                        }
                        for m in leader_ids
                    ],
                )
            record_events(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                items=[
                    Event("CommunityCreated", "community", community_id, {"name": fields["name"]}),
                    Event(
                        "GroupOpened",
                        "group",
                        first_group["id"],
                        {
                            "community_id": community_id,
                            "name": first_group["name"],
                            "cap": first_group["cap"],
                        },
                    ),
                    *[
                        Event(
                            "CommunityJoined",
                            "member",
                            m,
                            {"community_id": community_id, "role": MemberRole.LEADER.value},
                        )
                        for m in leader_ids
                    ],
                ],
            )
            return community_view(tx, ctx.tenant_id, _Row(row))
    except IntegrityError as exc:
        if violated_constraint(exc) == "uq_communities_tenant_id_name":
            raise Conflict("community_name_taken", name=fields["name"]) from None
        raise


class _Row:
    """A dict read like a row (for the helpers that take rows)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self._mapping = data

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None


def get_community(ctx: Ctx, *, community_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        row = require_community(tx, ctx.tenant_id, community_id)
        return community_view(tx, ctx.tenant_id, row)


def list_communities(ctx: Ctx, *, after: str | None = None, limit: int = 50) -> dict[str, Any]:
    after = checked_cursor(after, "cmty")
    c = communities.c
    query = select(communities).where(c.tenant_id == ctx.tenant_id)
    if after is not None:
        query = query.where(c.id > after)
    with ctx.db.read() as tx:
        rows = tx.execute(query.order_by(c.id).limit(limit + 1)).all()
        page = rows[:limit]
        items = [community_view(tx, ctx.tenant_id, r) for r in page]
    return {"items": items, "next_after": page[-1].id if len(rows) > limit else None}


def add_venue(
    ctx: Ctx,
    *,
    community_id: str,
    name: str,
    kind: str,
    role: str,
    external_id: str | None = None,
    platform_limit_declared: int | None = None,
    default: bool = False,
) -> dict[str, Any]:
    """A venue (场) of the community; `default` makes it where new groups are opened (their
    cap then also respects its platform limit)."""
    chosen_kind = venue_kind(kind)
    chosen_role = venue_role(role)
    limit = platform_limit(chosen_kind, platform_limit_declared)
    now = ctx.clock.now()
    row: dict[str, Any] = {
        "tenant_id": ctx.tenant_id,
        "id": new_id("ven"),
        "community_id": community_id,
        "name": clean_text(name, field="name", max_length=80, required=True),
        "kind": chosen_kind.value,
        "role": chosen_role.value,
        "external_id": clean_text(external_id, field="external_id", max_length=80) or None,
        "platform_limit": limit,
        "created_at": now,
    }
    try:
        with ctx.db.transaction() as tx:
            community = require_community(tx, ctx.tenant_id, community_id, for_update=True)
            tx.execute(venues.insert().values(row))
            if default:
                tx.execute(
                    communities.update()
                    .where(
                        communities.c.tenant_id == ctx.tenant_id, communities.c.id == community_id
                    )
                    .values(venue_id=row["id"], updated_at=now)
                )
                # The community's empty groups move to the venue and take its cap.
                cap = hard_cap(community.size_class, limit)
                g = groups.c
                tx.execute(
                    groups.update()
                    .where(
                        g.tenant_id == ctx.tenant_id,
                        g.community_id == community_id,
                        g.size == 0,
                        g.venue_id.is_(None),
                    )
                    .values(venue_id=row["id"], cap=cap, updated_at=now)
                )
            record_events(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                items=[
                    Event(
                        "VenueCreated",
                        "venue",
                        row["id"],
                        {"community_id": community_id, "kind": row["kind"], "role": row["role"]},
                    )
                ],
            )
    except IntegrityError as exc:
        if violated_constraint(exc) == "uq_venues_tenant_id_community_id_name":
            raise Conflict("venue_name_taken", name=row["name"]) from None
        raise
    return _venue_view(_Row(row))


def list_venues(ctx: Ctx, *, community_id: str) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        require_community(tx, ctx.tenant_id, community_id)
        rows = tx.execute(
            select(venues)
            .where(venues.c.tenant_id == ctx.tenant_id, venues.c.community_id == community_id)
            .order_by(venues.c.id)
        ).all()
    return [_venue_view(r) for r in rows]
