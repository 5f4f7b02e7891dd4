"""Importing the groups a brand already runs: one row per member of a group (the group's
external id, its name, the member's id or external id). Imported groups keep the members they
have, even past the cap, and are flagged oversize so that an operator splits them; placement
never adds anyone to a group at or over its cap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select

from shequn.batch import WriteBatch
from shequn.community.common import rows_for_ids
from shequn.community.communities.queries import require_community
from shequn.community.communities.rules import MemberRole, clean_text, group_name
from shequn.community.groups.queries import (
    join_target,
    opened_events,
    opened_rows,
    placed_events,
    venue_limit,
)
from shequn.community.groups.rules import (
    OpenedGroup,
    Policy,
    hard_cap,
    is_oversize,
    size_class_of,
)
from shequn.community.tables import communities, community_members, groups, venues
from shequn.context import Ctx
from shequn.errors import InvalidInput, NotFound
from shequn.events.service import Event, stage_events
from shequn.ids import new_id
from shequn.locks import Lock, take
from shequn.members.tables import members

GROUPS_PER_CHUNK = 200
MAX_ROWS = 500_000


def _clean(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, list[str]]]:
    """{group external id: (name, member refs in order)}; refuses the whole file on one bad
    row."""
    if len(rows) > MAX_ROWS:
        raise InvalidInput("import_too_large", max=MAX_ROWS)
    out: dict[str, tuple[str, list[str]]] = {}
    for index, row in enumerate(rows, start=1):
        key = clean_text(str(row.get("group") or ""), field="group", max_length=80)
        ref = clean_text(str(row.get("member") or ""), field="member", max_length=80)
        if not key or not ref:
            raise InvalidInput("import_row_invalid", row=index)
        name = clean_text(str(row.get("name") or ""), field="name", max_length=80)
        known = out.get(key)
        if known is None:
            out[key] = (name or key, [ref])
        else:
            known[1].append(ref)
    return out


def import_groups(
    ctx: Ctx,
    *,
    community_id: str,
    rows: Sequence[Mapping[str, Any]],
    venue_id: str | None = None,
    size_class: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Import groups and their members into the community, a chunk of groups per
    transaction. A member already placed in the community, or listed in two groups, stays in
    the first; an unknown member is listed, not placed. `progress` is told how many groups
    each chunk handled."""
    wanted = _clean(rows)
    with ctx.db.read() as tx:
        community = require_community(tx, ctx.tenant_id, community_id)
        venue = venue_id or community.venue_id
        if (
            venue_id is not None
            and tx.execute(
                select(venues.c.id).where(
                    venues.c.tenant_id == ctx.tenant_id,
                    venues.c.id == venue_id,
                    venues.c.community_id == community_id,
                )
            ).first()
            is None
        ):
            raise NotFound("venue_not_found", id=venue_id)
        chosen = size_class_of(size_class) if size_class is not None else community.size_class
        cap = hard_cap(chosen, venue_limit(tx, ctx.tenant_id, venue))
    totals: dict[str, Any] = {
        "groups": 0,
        "members": 0,
        "oversize": [],
        "unknown": [],
        "duplicates": 0,
        "already_placed": 0,
    }
    keys = list(wanted)
    for start in range(0, len(keys), GROUPS_PER_CHUNK):
        part = {k: wanted[k] for k in keys[start : start + GROUPS_PER_CHUNK]}
        _import_chunk(
            ctx, community_id, part, venue=venue, size_class=chosen, cap=cap, totals=totals
        )
        if progress is not None:
            progress(len(part))
    _keep_a_join_target(ctx, community_id)
    return {"community_id": community_id, "cap": cap, **totals}


def _import_chunk(
    ctx: Ctx,
    community_id: str,
    part: Mapping[str, tuple[str, list[str]]],
    *,
    venue: str | None,
    size_class: int,
    cap: int,
    totals: dict[str, Any],
) -> None:
    now = ctx.clock.now()
    refs = sorted({r for _, listed in part.values() for r in listed})
    with ctx.db.transaction() as tx:
        community = require_community(tx, ctx.tenant_id, community_id, for_update=True)
        resolved: dict[str, str] = {}
        for key in ("id", "external_id"):
            for r in rows_for_ids(
                tx, members, key, refs, ("id", "external_id"), members.c.tenant_id == ctx.tenant_id
            ):
                resolved[r.id] = r.id
                if r.external_id is not None:
                    resolved.setdefault(r.external_id, r.id)
        c = community_members.c
        present = {
            r.member_id: r.group_id
            for r in rows_for_ids(
                tx,
                community_members,
                "member_id",
                sorted(set(resolved.values())),
                ("member_id", "group_id"),
                c.tenant_id == ctx.tenant_id,
                c.community_id == community_id,
            )
        }
        g = groups.c
        existing = {
            r.external_id: r
            for r in tx.execute(
                select(g.id, g.external_id, g.size).where(
                    g.tenant_id == ctx.tenant_id,
                    g.community_id == community_id,
                    g.external_id.in_(list(part)),
                )
            ).all()
        }
        taken: set[str] = set()
        plan: dict[str, list[str]] = {}
        for key, (_, listed) in part.items():
            chosen: list[str] = []
            for ref in listed:
                member_id = resolved.get(ref)
                if member_id is None:
                    totals["unknown"].append(ref)
                elif member_id in taken:
                    totals["duplicates"] += 1
                elif present.get(member_id) is not None:
                    totals["already_placed"] += 1
                else:
                    taken.add(member_id)
                    chosen.append(member_id)
            plan[key] = chosen
        new_keys = [k for k in part if k not in existing]
        number = community.next_group_number
        opened = [OpenedGroup(new_id("grp"), number + i, None, cap) for i in range(len(new_keys))]
        fresh = sum(1 for ids in plan.values() for m in ids if m not in present)
        tx.execute(
            communities.update()
            .where(communities.c.tenant_id == ctx.tenant_id, communities.c.id == community_id)
            .values(
                next_group_number=number + len(opened),
                member_count=community.member_count + fresh,
                updated_at=now,
            )
        )
        take(tx, Lock.GROUPS)
        rows = opened_rows(community, opened, Policy.FILL, at=now)
        group_of: dict[str, str] = {k: existing[k].id for k in existing}
        for row, key in zip(rows, new_keys, strict=True):
            row.update(
                venue_id=venue,
                size_class=size_class,
                size=len(plan[key]),
                imported=True,
                external_id=key,
                name=part[key][0][:80]
                or group_name(
                    community.group_name_pattern,
                    community=community.name,
                    title=community.member_title,
                    number=row["number"],
                ),
            )
            group_of[key] = row["id"]
            if is_oversize(row["size"], cap):
                totals["oversize"].append(row["id"])
        batch = WriteBatch()
        batch.insert(groups, rows)
        for key, found in existing.items():
            if plan[key]:
                batch.update(
                    groups,
                    {"tenant_id": ctx.tenant_id, "id": found.id},
                    values={"size": found.size + len(plan[key]), "imported": True},
                )
        batch.insert(
            community_members,
            [
                {
                    "tenant_id": ctx.tenant_id,
                    "community_id": community_id,
                    "member_id": m,
                    "role": MemberRole.MEMBER.value,
                    "group_id": group_of[key],
                    "region": None,
                    "placed_by": "import",
                    "joined_at": now,
                }
                for key, ids in plan.items()
                for m in ids
                if m not in present
            ],
        )
        for key, ids in plan.items():
            for m in ids:
                if m in present:
                    batch.update(
                        community_members,
                        {"tenant_id": ctx.tenant_id, "community_id": community_id, "member_id": m},
                        values={"group_id": group_of[key], "placed_by": "import"},
                    )
        stage_events(
            batch,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[
                *opened_events(rows),
                Event(
                    "GroupsImported",
                    "community",
                    community_id,
                    {"groups": len(part), "members": sum(len(v) for v in plan.values())},
                ),
                *placed_events(
                    community_id, "import", {group_of[k]: ids for k, ids in plan.items() if ids}
                ),
            ],
        )
        batch.flush(tx)
    totals["groups"] += len(part)
    totals["members"] += sum(len(v) for v in plan.values())


def _keep_a_join_target(ctx: Ctx, community_id: str) -> None:
    """After an import every group may be full: open the next group so that the join code
    still points at one with room."""
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        community = require_community(tx, ctx.tenant_id, community_id, for_update=True)
        if join_target(tx, ctx.tenant_id, community_id) is not None:
            return
        cap = hard_cap(community.size_class, venue_limit(tx, ctx.tenant_id, community.venue_id))
        opened = [OpenedGroup(new_id("grp"), community.next_group_number, None, cap)]
        tx.execute(
            communities.update()
            .where(communities.c.tenant_id == ctx.tenant_id, communities.c.id == community_id)
            .values(next_group_number=community.next_group_number + 1, updated_at=now)
        )
        take(tx, Lock.GROUPS)
        rows = opened_rows(community, opened, Policy.FILL, at=now)
        batch = WriteBatch()
        batch.insert(groups, rows)
        stage_events(
            batch, tenant_id=ctx.tenant_id, actor=ctx.actor, at=now, items=opened_events(rows)
        )
        batch.flush(tx)
