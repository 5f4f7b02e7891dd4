"""Groups: read them, the community's join code, joining by it, and the split of an oversize
group into groups under the cap that keeps members who interact together."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from shequn.batch import WriteBatch
from shequn.community.activities.rules import INTERACTIONS
from shequn.community.communities.queries import require_community
from shequn.community.groups.placement import join_community
from shequn.community.groups.queries import (
    group_view,
    join_target,
    opened_rows,
    require_group,
    venue_limit,
)
from shequn.community.groups.rules import (
    OpenedGroup,
    Policy,
    hard_cap,
    size_class_of,
    split_members,
)
from shequn.community.outbox.rules import Message
from shequn.community.outbox.service import enqueue_messages
from shequn.community.tables import activities, communities, community_members, groups
from shequn.context import Ctx
from shequn.errors import Conflict, NotFound
from shequn.events.service import Event, stage_events
from shequn.i18n import translate
from shequn.ids import checked_cursor, new_id
from shequn.locks import Lock, take
from shequn.members.tables import members

# Interactions older than this no longer say who belongs together.
INTERACTION_WINDOW = timedelta(days=90)
NAMES_SHOWN = 20


def get_group(ctx: Ctx, *, group_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        return group_view(require_group(tx, ctx.tenant_id, group_id))


def group_members(ctx: Ctx, *, group_id: str) -> list[dict[str, Any]]:
    c = community_members.c
    with ctx.db.read() as tx:
        require_group(tx, ctx.tenant_id, group_id)
        rows = tx.execute(
            select(c.member_id, c.role, c.joined_at)
            .where(c.tenant_id == ctx.tenant_id, c.group_id == group_id)
            .order_by(c.joined_at, c.member_id)
        ).all()
    return [dict(r._mapping) for r in rows]


def list_groups(
    ctx: Ctx,
    *,
    community_id: str,
    oversize: bool | None = None,
    after: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """The community's groups, by number; `oversize=true` lists the flagged ones (imported
    groups over their cap)."""
    after = checked_cursor(after, "grp")
    g = groups.c
    query = select(groups).where(g.tenant_id == ctx.tenant_id, g.community_id == community_id)
    if oversize is not None:
        query = query.where((g.size > g.cap) if oversize else (g.size <= g.cap))
    if after is not None:
        query = query.where(g.id > after)
    with ctx.db.read() as tx:
        require_community(tx, ctx.tenant_id, community_id)
        rows = tx.execute(query.order_by(g.id).limit(limit + 1)).all()
    page = rows[:limit]
    return {
        "items": [group_view(r) for r in page],
        "next_after": page[-1].id if len(rows) > limit else None,
    }


def join_code(ctx: Ctx, *, community_id: str) -> dict[str, Any]:
    """The community's join code and the group it points at now: always one with room (a
    placement that fills the last seat opens the next group in the same transaction)."""
    with ctx.db.read() as tx:
        community = require_community(tx, ctx.tenant_id, community_id)
        target = join_target(tx, ctx.tenant_id, community_id)
    if target is None:
        raise Conflict("community_has_no_room", id=community_id)
    return {
        "community_id": community_id,
        "code": community.join_code,
        "group": group_view(target),
    }


def join_by_code(ctx: Ctx, *, code: str, member_id: str) -> tuple[dict[str, Any], bool]:
    """Join the community whose join code this is (the member lands in a group with room)."""
    with ctx.db.read() as tx:
        community_id = tx.execute(
            select(communities.c.id).where(
                communities.c.tenant_id == ctx.tenant_id, communities.c.join_code == code.strip()
            )
        ).scalar_one_or_none()
    if community_id is None:
        raise NotFound("join_code_not_found")
    return join_community(ctx, community_id=community_id, member_id=member_id)


def split_group(ctx: Ctx, *, group_id: str, size_class: int | None = None) -> dict[str, Any]:
    """Split a group over its cap (or over the cap of a smaller size class) into groups under
    it: members linked by their interactions of the last 90 days stay together, the largest
    part stays in the group, each other part opens a new group of the community, and each new
    group's operator gets a task listing whom to invite."""
    now = ctx.clock.now()
    with ctx.db.read() as tx:
        found = require_group(tx, ctx.tenant_id, group_id)
    with ctx.db.transaction() as tx:
        community = require_community(tx, ctx.tenant_id, found.community_id, for_update=True)
        group = require_group(tx, ctx.tenant_id, group_id)
        chosen = size_class_of(size_class) if size_class is not None else group.size_class
        cap = hard_cap(chosen, venue_limit(tx, ctx.tenant_id, group.venue_id))
        if group.size <= cap:
            raise Conflict("group_not_oversize", size=group.size, cap=cap)
        c = community_members.c
        member_ids = list(
            tx.execute(
                select(c.member_id)
                .where(c.tenant_id == ctx.tenant_id, c.group_id == group_id)
                .order_by(c.joined_at, c.member_id)
            ).scalars()
        )
        a = activities.c
        links = tx.execute(
            select(a.member_id, a.target_member_id, func.count())
            .where(
                a.tenant_id == ctx.tenant_id,
                a.group_id == group_id,
                a.kind.in_([k.value for k in INTERACTIONS]),
                a.member_id.is_not(None),
                a.target_member_id.is_not(None),
                a.occurred_at >= now - INTERACTION_WINDOW,
            )
            .group_by(a.member_id, a.target_member_id)
        ).all()
        parts = split_members(member_ids, [(r[0], r[1], int(r[2])) for r in links], cap)
        number = community.next_group_number
        opened = [OpenedGroup(new_id("grp"), number + i, None, cap) for i in range(len(parts) - 1)]
        tx.execute(
            communities.update()
            .where(communities.c.tenant_id == ctx.tenant_id, communities.c.id == community.id)
            .values(next_group_number=number + len(opened), updated_at=now)
        )
        take(tx, Lock.GROUPS)
        rows = opened_rows(community, opened, Policy.FILL, at=now)
        for row, part in zip(rows, parts[1:], strict=True):
            row.update(
                venue_id=group.venue_id,
                size_class=chosen,
                size=len(part),
                region=group.region,
                interest=group.interest,
                staff_account_id=group.staff_account_id,
                lifecycle_stage=group.lifecycle_stage,
                split_from=group_id,
            )
        batch = WriteBatch()
        batch.insert(groups, rows)
        batch.update(
            groups,
            {"tenant_id": ctx.tenant_id, "id": group_id},
            values={"size": len(parts[0]), "size_class": chosen, "cap": cap, "updated_at": now},
        )
        for row, part in zip(rows, parts[1:], strict=True):
            for member_id in part:
                batch.update(
                    community_members,
                    {
                        "tenant_id": ctx.tenant_id,
                        "community_id": community.id,
                        "member_id": member_id,
                    },
                    values={"group_id": row["id"]},
                )
        stage_events(
            batch,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[
                Event(
                    "GroupSplit",
                    "group",
                    group_id,
                    {
                        "community_id": community.id,
                        "cap": cap,
                        "kept": len(parts[0]),
                        "into": [{"group_id": r["id"], "size": r["size"]} for r in rows],
                    },
                ),
                *[
                    Event(
                        "GroupOpened",
                        "group",
                        r["id"],
                        {"community_id": community.id, "name": r["name"], "cap": cap},
                    )
                    for r in rows
                ],
            ],
        )
        batch.flush(tx)
        names = dict(
            tx.execute(
                select(members.c.id, members.c.name).where(
                    members.c.tenant_id == ctx.tenant_id,
                    members.c.id.in_([m for part in parts[1:] for m in part]),
                )
            ).all()
        )
        enqueue_messages(
            tx,
            tenant_id=ctx.tenant_id,
            at=now,
            messages=[
                Message(
                    dedupe_key=f"split:{group_id}:{row['id']}",
                    kind="group_split_invite",
                    body=translate(
                        "community.split.invite",
                        group=row["name"],
                        source=group.name,
                        count=len(part),
                        names="、".join(names.get(m, m) for m in part[:NAMES_SHOWN]),
                    ),
                    staff_account_id=group.staff_account_id,
                    group_id=row["id"],
                    payload={"member_ids": part, "from_group_id": group_id},
                )
                for row, part in zip(rows, parts[1:], strict=True)
            ],
        )
        kept = require_group(tx, ctx.tenant_id, group_id)
    return {
        "group": group_view(kept),
        "parts": [
            {"group_id": group_id, "name": group.name, "size": len(parts[0])},
            *[{"group_id": r["id"], "name": r["name"], "size": r["size"]} for r in rows],
        ],
        "moved": sum(len(p) for p in parts[1:]),
    }
