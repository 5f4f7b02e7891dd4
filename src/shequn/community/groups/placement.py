"""Placing members in a community's groups: one member (`join_community`) or many at once
(`place_members`, set-based: per chunk on PostgreSQL, the memberships appended with COPY
and the groups' sizes, events and welcome tasks in a few set-based statements).

Every placement locks the community row first, so placements in one community follow each
other: the groups with room are read under that lock, the pure rule decides, and each
group's size moves by the members it takes. Twenty members joining a group with one seat
left at the same time therefore get one seat between them and one new group for the other
nineteen, and the database refuses a group past its cap whatever path writes it (a check
constraint of the groups table).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, String, bindparam, func, select, text, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from shequn.batch import WriteBatch
from shequn.community.common import copy_rows, ids_in, rows_for_ids, view
from shequn.community.communities.queries import require_community
from shequn.community.communities.rules import MemberRole, clean_text, member_role
from shequn.community.groups.keys import Hints, joiners
from shequn.community.groups.queries import (
    group_view,
    opened_events,
    opened_rows,
    placed_events,
    rooms,
    venue_limit,
)
from shequn.community.groups.rules import Policy, hard_cap, plan_placements, policy_of
from shequn.community.outbox.service import enqueue_messages
from shequn.community.rituals.chronicle import member_count_milestones
from shequn.community.rituals.rules import Trigger
from shequn.community.rituals.welcome import Arrival, batch_welcome, welcome_messages
from shequn.community.tables import communities, community_members, groups
from shequn.context import Ctx
from shequn.db import violated_constraint
from shequn.errors import InvalidInput
from shequn.events.service import Event, stage_events
from shequn.ids import new_id
from shequn.jsoncodec import dumps_json
from shequn.locks import Lock, take
from shequn.members.repo import require_member
from shequn.members.tables import members

MAX_CHUNK = 50_000
MEMBERSHIP_COLUMNS = (
    "tenant_id",
    "community_id",
    "member_id",
    "role",
    "group_id",
    "region",
    "placed_by",
    "joined_at",
)


def _membership(tx: Connection, tenant_id: str, community_id: str, member_id: str) -> Any:
    c = community_members.c
    return tx.execute(
        select(community_members).where(
            c.tenant_id == tenant_id, c.community_id == community_id, c.member_id == member_id
        )
    ).first()


def _placed_view(tx: Connection, tenant_id: str, row: Any, opened: bool) -> dict[str, Any]:
    group = None
    if row.group_id is not None:
        group = tx.execute(
            select(groups).where(groups.c.tenant_id == tenant_id, groups.c.id == row.group_id)
        ).first()
    return {
        "community_id": row.community_id,
        "member_id": row.member_id,
        "role": row.role,
        "region": row.region,
        "placed_by": row.placed_by,
        "joined_at": row.joined_at,
        "group_id": row.group_id,
        "group": group_view(group) if group is not None else None,
        "opened_group": opened,
    }


def join_community(
    ctx: Ctx,
    *,
    community_id: str,
    member_id: str,
    policy: str | None = None,
    role: str = "member",
    region: str | None = None,
    interest: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Put a member in the community and in a group with room by `policy`, opening a new
    group when none has room; a member already in the community is answered as placed
    (replayed). Returns (placement, replayed)."""
    chosen = policy_of(policy)
    member_role(role)
    hints = Hints(
        region=clean_text(region, field="region", max_length=40) or None,
        interest=clean_text(interest, field="interest", max_length=40) or None,
    )
    for attempt in range(2):
        try:
            return _join(ctx, community_id, member_id, chosen, role, hints)
        except IntegrityError as exc:
            # The same member joined in a parallel request: read what it made.
            if attempt or violated_constraint(exc) not in (None, "pk_community_members"):
                raise
    raise AssertionError("unreachable")


def _join(
    ctx: Ctx, community_id: str, member_id: str, policy: Policy, role: str, hints: Hints
) -> tuple[dict[str, Any], bool]:
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        community = require_community(tx, ctx.tenant_id, community_id, for_update=True)
        require_member(tx, ctx.tenant_id, member_id)
        existing = _membership(tx, ctx.tenant_id, community_id, member_id)
        if existing is not None and existing.group_id is not None:
            return _placed_view(tx, ctx.tenant_id, existing, False), True
        people, placed = joiners(
            tx,
            tenant_id=ctx.tenant_id,
            community_id=community_id,
            policy=policy,
            member_ids=[member_id],
            hints={member_id: hints},
        )
        result = _place(
            tx, ctx, community, policy, people, placed, new_members=int(existing is None), now=now
        )
        values = {"group_id": result.placements[member_id], "placed_by": policy.value}
        if existing is None:
            tx.execute(
                community_members.insert().values(
                    tenant_id=ctx.tenant_id,
                    community_id=community_id,
                    member_id=member_id,
                    role=role,
                    region=hints.region,
                    joined_at=now,
                    **values,
                )
            )
        else:
            c = community_members.c
            tx.execute(
                community_members.update()
                .where(
                    c.tenant_id == ctx.tenant_id,
                    c.community_id == community_id,
                    c.member_id == member_id,
                )
                .values(**values)
            )
        group_id = result.placements[member_id]
        enqueue_messages(
            tx,
            tenant_id=ctx.tenant_id,
            at=now,
            messages=welcome_messages(
                tx,
                tenant_id=ctx.tenant_id,
                trigger=Trigger.GROUP_JOINED,
                community_id=community_id,
                arrivals=[Arrival(member_id, group_id=group_id)],
                at=now,
            ),
        )
        batch = WriteBatch()
        stage_events(
            batch,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[
                *opened_events(result.opened_rows),
                Event(
                    "GroupJoined",
                    "member",
                    member_id,
                    {"community_id": community_id, "group_id": group_id, "policy": policy.value},
                ),
            ],
        )
        batch.flush(tx)
        row = _membership(tx, ctx.tenant_id, community_id, member_id)
        opened = group_id in {r["id"] for r in result.opened_rows}
        return _placed_view(tx, ctx.tenant_id, row, opened), False


class _Placed:
    """What `_place` wrote: each member's group and the rows of the groups it opened."""

    def __init__(self, placements: dict[str, str], opened_rows: list[dict[str, Any]]) -> None:
        self.placements = placements
        self.opened_rows = opened_rows


def _place(
    tx: Connection,
    ctx: Ctx,
    community: Any,
    policy: Policy,
    people: Sequence[Any],
    placed: Mapping[str, str],
    *,
    new_members: int,
    now: Any,
) -> _Placed:
    """Plan the placement of `people` in the locked community and move the counts: the
    community's (members, next group number), then the groups' (opened and filled)."""
    cap = hard_cap(community.size_class, venue_limit(tx, ctx.tenant_id, community.venue_id))
    plan = plan_placements(
        people,
        rooms(tx, ctx.tenant_id, community.id, policy, also=list(placed.values())),
        policy=policy,
        new_cap=cap,
        next_number=community.next_group_number,
        new_group_id=lambda: new_id("grp"),
        placed=placed,
    )
    before = community.member_count
    after = before + new_members
    tx.execute(
        communities.update()
        .where(communities.c.tenant_id == ctx.tenant_id, communities.c.id == community.id)
        .values(
            member_count=after,
            next_group_number=community.next_group_number + len(plan.opened),
            updated_at=now,
        )
    )
    member_count_milestones(
        tx,
        tenant_id=ctx.tenant_id,
        community_id=community.id,
        before=before,
        after=after,
        at=now,
        actor=ctx.actor,
    )
    take(tx, Lock.GROUPS)
    new_rows = opened_rows(community, plan.opened, policy, at=now)
    opened_ids = {r["id"] for r in new_rows}
    batch = WriteBatch()
    for row in new_rows:
        row["size"] = plan.sizes.get(row["id"], 0)
    batch.insert(groups, new_rows)
    batch.flush(tx)
    _write_sizes(
        tx,
        ctx.tenant_id,
        {g: size for g, size in plan.sizes.items() if g not in opened_ids},
        now,
    )
    return _Placed(dict(plan.placements), new_rows)


_SIZES_PG = text(
    """
    UPDATE groups AS g SET size = v.size, updated_at = :now
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(id text, size int)
    WHERE g.tenant_id = :tenant_id AND g.id = v.id
    """
)


def _write_sizes(tx: Connection, tenant_id: str, sizes: Mapping[str, int], now: Any) -> None:
    """Every group's new size in one set-based statement (the groups are the locked
    community's: no other writer moves them meanwhile)."""
    if not sizes:
        return
    if tx.dialect.name == "postgresql":
        rows = dumps_json([{"id": g, "size": n} for g, n in sizes.items()])
        tx.execute(_SIZES_PG, {"rows": rows, "now": now, "tenant_id": tenant_id})
        return
    g = groups.c
    tx.execute(
        groups.update()
        .where(g.tenant_id == tenant_id, g.id == bindparam("group_id"))
        .values(size=bindparam("new_size"), updated_at=now),
        [{"group_id": group_id, "new_size": n} for group_id, n in sizes.items()],
    )


# --- many members at once -------------------------------------------------------------------


def place_members(
    ctx: Ctx,
    *,
    community_id: str,
    entries: Sequence[Mapping[str, Any]],
    policy: str | None = None,
    chunk: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Place many members (`{"member_id", "region"?, "interest"?}` each) by `policy`, a
    chunk per transaction: members already placed are counted and left where they are,
    unknown members are listed, not placed. `progress` is told how many entries each chunk
    handled."""
    chosen = policy_of(policy)
    if not 1 <= chunk <= MAX_CHUNK:
        raise InvalidInput("chunk_invalid", max=MAX_CHUNK)
    cleaned: list[tuple[str, Hints]] = []
    seen: set[str] = set()
    # a million joiners share a few hundred regions and interests: each is cleaned once
    known: dict[tuple[Any, Any], Hints] = {}
    for entry in entries:
        member_id = entry.get("member_id")
        if not isinstance(member_id, str) or not member_id or len(member_id) > 40:
            raise InvalidInput("member_id_invalid")
        if member_id in seen:
            continue
        seen.add(member_id)
        given = (entry.get("region"), entry.get("interest"))
        hints = known.get(given)
        if hints is None:
            hints = Hints(
                region=clean_text(given[0], field="region", max_length=40) or None,
                interest=clean_text(given[1], field="interest", max_length=40) or None,
            )
            known[given] = hints
        cleaned.append((member_id, hints))
    run_id = new_id("run")
    placed = already = opened = 0
    unknown: list[str] = []
    with ctx.db.read() as tx:
        require_community(tx, ctx.tenant_id, community_id)
    for number, start in enumerate(range(0, len(cleaned), chunk), start=1):
        part = cleaned[start : start + chunk]
        one = _place_chunk(ctx, community_id, chosen, part, run_id=run_id, part_no=number)
        placed += one[0]
        already += one[1]
        unknown.extend(one[2])
        opened += one[3]
        if progress is not None:
            progress(len(part))
    return {
        "community_id": community_id,
        "policy": chosen.value,
        "run_id": run_id,
        "received": len(entries),
        "placed": placed,
        "already": already,
        "unknown": unknown,
        "opened_groups": opened,
    }


def _known_and_present(
    tx: Connection, tenant_id: str, community_id: str, ids: Sequence[str]
) -> tuple[dict[str, str], dict[str, str | None]]:
    """Of `ids`: the members the tenant has (with their names), and those already in the
    community (with their group, if placed). One pass over the ids on PostgreSQL: each id
    looked up in both tables by key (`LIMIT 1` keeps each lookup a lateral one, by index:
    the community's rows written moments ago by the same bulk work still have the statistics
    of an empty table, and a join planned for those compares every row with every id)."""
    c = community_members.c
    if tx.dialect.name != "postgresql":
        found = {
            r.id: r.name
            for r in rows_for_ids(
                tx, members, "id", ids, ("id", "name"), members.c.tenant_id == tenant_id
            )
        }
        present = {
            r.member_id: r.group_id
            for r in rows_for_ids(
                tx,
                community_members,
                "member_id",
                ids,
                ("member_id", "group_id"),
                c.tenant_id == tenant_id,
                c.community_id == community_id,
            )
        }
        return found, present
    param = bindparam("ids", dumps_json(list(ids)), type_=String).cast(postgresql.JSONB)
    wanted = func.jsonb_array_elements_text(param).table_valued("value").alias("wanted")
    person = (
        select(members.c.name)
        .where(members.c.tenant_id == tenant_id, members.c.id == wanted.c.value)
        .limit(1)
        .lateral("person")
    )
    joined = (
        select(c.group_id, true().label("present"))
        .where(
            c.tenant_id == tenant_id,
            c.community_id == community_id,
            c.member_id == wanted.c.value,
        )
        .limit(1)
        .lateral("joined")
    )
    rows = tx.execute(
        select(wanted.c.value, person.c.name, joined.c.present, joined.c.group_id)
        .select_from(wanted)
        .join(person, true())
        .outerjoin(joined, true())
    ).all()
    return (
        {r[0]: r[1] for r in rows},
        {r[0]: r[3] for r in rows if r[2]},
    )


def _place_chunk(
    ctx: Ctx,
    community_id: str,
    policy: Policy,
    part: Sequence[tuple[str, Hints]],
    *,
    run_id: str,
    part_no: int,
) -> tuple[int, int, list[str], int]:
    now = ctx.clock.now()
    ids = [m for m, _ in part]
    with ctx.db.transaction() as tx:
        community = require_community(tx, ctx.tenant_id, community_id, for_update=True)
        found, present = _known_and_present(tx, ctx.tenant_id, community_id, ids)
        unknown = [m for m in ids if m not in found]
        todo = [(m, h) for m, h in part if m in found and present.get(m) is None]
        already = sum(1 for m in ids if present.get(m) is not None)
        if not todo:
            return 0, already, unknown, 0
        people, placed = joiners(
            tx,
            tenant_id=ctx.tenant_id,
            community_id=community_id,
            policy=policy,
            member_ids=[m for m, _ in todo],
            hints=dict(todo),
        )
        fresh = sum(1 for m, _ in todo if m not in present)
        result = _place(tx, ctx, community, policy, people, placed, new_members=fresh, now=now)
        hints = dict(todo)
        # the community is locked and these members are not in it: their rows are new
        copy_rows(
            tx,
            community_members,
            MEMBERSHIP_COLUMNS,
            [
                (
                    ctx.tenant_id,
                    community_id,
                    m,
                    MemberRole.MEMBER.value,
                    result.placements[m],
                    hints[m].region,
                    policy.value,
                    now,
                )
                for m, _ in todo
                if m not in present
            ],
        )
        batch = WriteBatch()
        for m, _ in todo:
            if m in present:
                batch.update(
                    community_members,
                    {"tenant_id": ctx.tenant_id, "community_id": community_id, "member_id": m},
                    values={"group_id": result.placements[m], "placed_by": policy.value},
                )
        by_group: dict[str, list[str]] = {}
        for m, _ in todo:
            by_group.setdefault(result.placements[m], []).append(m)
        events = [
            *opened_events(result.opened_rows),
            *placed_events(community_id, policy.value, by_group),
        ]
        stage_events(batch, tenant_id=ctx.tenant_id, actor=ctx.actor, at=now, items=events)
        batch.flush(tx)
        owners = dict(
            tx.execute(
                select(groups.c.id, groups.c.staff_account_id).where(
                    groups.c.tenant_id == ctx.tenant_id, ids_in(tx, groups.c.id, list(by_group))
                )
            ).all()
        )
        names = dict(
            tx.execute(
                select(groups.c.id, groups.c.name).where(
                    groups.c.tenant_id == ctx.tenant_id, ids_in(tx, groups.c.id, list(by_group))
                )
            ).all()
        )
        enqueue_messages(
            tx,
            tenant_id=ctx.tenant_id,
            at=now,
            messages=[
                batch_welcome(
                    group_id=g,
                    group_name=names[g],
                    staff_account_id=owners.get(g),
                    names=[found[m] for m in member_ids],
                    run_id=f"{run_id}.{part_no}",
                )
                for g, member_ids in by_group.items()
            ],
        )
        return len(todo), already, unknown, len(result.opened_rows)


def set_role(ctx: Ctx, *, community_id: str, member_id: str, role: str) -> dict[str, Any]:
    """Give a member a role in the community (leader 领, lecturer, ambassador); a member not
    yet in it joins without a group."""
    chosen = member_role(role)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        community = require_community(tx, ctx.tenant_id, community_id, for_update=True)
        require_member(tx, ctx.tenant_id, member_id)
        existing = _membership(tx, ctx.tenant_id, community_id, member_id)
        c = community_members.c
        if existing is None:
            tx.execute(
                communities.update()
                .where(communities.c.tenant_id == ctx.tenant_id, communities.c.id == community_id)
                .values(member_count=community.member_count + 1, updated_at=now)
            )
            member_count_milestones(
                tx,
                tenant_id=ctx.tenant_id,
                community_id=community_id,
                before=community.member_count,
                after=community.member_count + 1,
                at=now,
                actor=ctx.actor,
            )
            tx.execute(
                community_members.insert().values(
                    tenant_id=ctx.tenant_id,
                    community_id=community_id,
                    member_id=member_id,
                    role=chosen.value,
                    group_id=None,
                    region=None,
                    placed_by=None,
                    joined_at=now,
                )
            )
        else:
            tx.execute(
                community_members.update()
                .where(
                    c.tenant_id == ctx.tenant_id,
                    c.community_id == community_id,
                    c.member_id == member_id,
                )
                .values(role=chosen.value)
            )
        stage = WriteBatch()
        stage_events(
            stage,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[
                Event(
                    "CommunityJoined",
                    "member",
                    member_id,
                    {"community_id": community_id, "role": chosen.value},
                )
            ],
        )
        stage.flush(tx)
        row = _membership(tx, ctx.tenant_id, community_id, member_id)
    return view(row)
