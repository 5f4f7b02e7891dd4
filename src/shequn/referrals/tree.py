"""The referral tree: a closure table (`referral_paths`) beside the chain columns and team
counts of each member row, changed set-based. Helpers run inside the caller's transaction,
which holds the tenant's tree lock (`shequn.locks.lock_referral_tree`); the member rows are
written through `shequn.members.repo`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, literal, select
from sqlalchemy.orm import aliased

from shequn.batch import WriteBatch
from shequn.context import Ctx
from shequn.errors import InvalidInput
from shequn.events.service import Event, record_event, stage_events
from shequn.ids import checked_cursor, new_id
from shequn.members import repo as member_rows
from shequn.members.tables import members
from shequn.referrals.rules import creates_cycle
from shequn.referrals.tables import referral_bindings, referral_paths


def lineage(tx: Connection, tenant_id: str, member_id: str) -> list[str]:
    """The member and all of its ancestors, nearest first."""
    rows = tx.execute(
        select(referral_paths.c.ancestor_id)
        .where(
            referral_paths.c.tenant_id == tenant_id,
            referral_paths.c.descendant_id == member_id,
        )
        .order_by(referral_paths.c.depth)
    ).all()
    return [r.ancestor_id for r in rows]


def insert_root(tx: Connection, tenant_id: str, member_id: str) -> None:
    """A new member is a tree of its own until it is bound."""
    tx.execute(
        insert(referral_paths).values(
            tenant_id=tenant_id, ancestor_id=member_id, descendant_id=member_id, depth=0
        )
    )


def _write_binding(
    tx: Connection,
    *,
    tenant_id: str,
    member_id: str,
    referrer_id: str | None,
    previous: str | None,
    kind: str,
    source: str,
    reason: str | None,
    actor: str,
    at: datetime,
) -> None:
    tx.execute(
        insert(referral_bindings).values(
            tenant_id=tenant_id,
            id=new_id("bnd"),
            member_id=member_id,
            referrer_id=referrer_id,
            previous_referrer_id=previous,
            kind=kind,
            source=source,
            reason=reason,
            actor=actor,
            occurred_at=at,
        )
    )
    record_event(
        tx,
        tenant_id=tenant_id,
        actor=actor,
        at=at,
        type="MemberBound" if kind == "bind" else "MemberRebound",
        subject_type="member",
        subject_id=member_id,
        payload={
            "referrer_id": referrer_id,
            "previous_referrer_id": previous,
            "source": source,
            "reason": reason,
        },
    )


def set_referrer(
    tx: Connection,
    *,
    tenant_id: str,
    member_id: str,
    referrer_id: str | None,
    source: str,
    kind: str,
    reason: str | None,
    actor: str,
    at: datetime,
) -> None:
    """Move the member (with its whole subtree) under `referrer_id`, set-based.

    The caller holds the tree lock and has checked that both members exist."""
    previous = tx.execute(
        select(members.c.referrer_id).where(
            members.c.tenant_id == tenant_id, members.c.id == member_id
        )
    ).scalar_one()
    if previous == referrer_id:
        return
    if referrer_id is not None:
        if referrer_id == member_id:
            raise InvalidInput("self_referral")
        if creates_cycle(member_id, lineage(tx, tenant_id, referrer_id)):
            raise InvalidInput("referral_cycle", member_id=member_id, referrer_id=referrer_id)

    p = referral_paths
    subtree = select(p.c.descendant_id).where(
        p.c.tenant_id == tenant_id, p.c.ancestor_id == member_id
    )
    size = tx.execute(
        select(func.count())
        .select_from(p)
        .where(p.c.tenant_id == tenant_id, p.c.ancestor_id == member_id)
    ).scalar_one()
    ancestors_of_member = select(p.c.ancestor_id).where(
        p.c.tenant_id == tenant_id, p.c.descendant_id == member_id, p.c.depth > 0
    )
    member_rows.add_to_team_counts(tx, tenant_id, ancestors_of_member, -size)
    if previous is not None:
        member_rows.add_to_direct_count(tx, tenant_id, previous, -1)
    # Cut every path that enters the subtree from outside.
    tx.execute(
        delete(p).where(
            p.c.tenant_id == tenant_id,
            p.c.descendant_id.in_(subtree),
            p.c.ancestor_id.not_in(subtree),
        )
    )
    if referrer_id is not None:
        above = aliased(p, name="above")
        below = aliased(p, name="below")
        tx.execute(
            insert(p).from_select(
                ["tenant_id", "ancestor_id", "descendant_id", "depth"],
                select(
                    literal(tenant_id),
                    above.c.ancestor_id,
                    below.c.descendant_id,
                    above.c.depth + below.c.depth + 1,
                )
                .select_from(above.join(below, literal(True)))
                .where(
                    above.c.tenant_id == tenant_id,
                    above.c.descendant_id == referrer_id,
                    below.c.tenant_id == tenant_id,
                    below.c.ancestor_id == member_id,
                ),
            )
        )
        member_rows.add_to_team_counts(tx, tenant_id, ancestors_of_member, size)
        member_rows.add_to_direct_count(tx, tenant_id, referrer_id, 1)
    member_rows.set_referrer_columns(
        tx, tenant_id, member_id, referrer_id=referrer_id, source=source, at=at, chain_known=False
    )
    _refresh_chains_below(tx, tenant_id=tenant_id, member_id=member_id)
    _write_binding(
        tx,
        tenant_id=tenant_id,
        member_id=member_id,
        referrer_id=referrer_id,
        previous=previous,
        kind=kind,
        source=source,
        reason=reason,
        actor=actor,
        at=at,
    )


def attach_new_member(
    tx: Connection,
    *,
    tenant_id: str,
    member_id: str,
    referrer_id: str,
    source: str,
    actor: str,
    at: datetime,
) -> None:
    """Bind a member registered in this very transaction: it has no subtree and no referrer
    yet, so its paths are the referrer's lineage one level down, no path is cut, and no
    cycle is possible."""
    chain = lineage(tx, tenant_id, referrer_id)  # the referrer first, then its ancestors
    tx.execute(
        insert(referral_paths),
        [
            {"tenant_id": tenant_id, "ancestor_id": a, "descendant_id": member_id, "depth": d}
            for d, a in enumerate(chain, start=1)
        ],
    )
    member_rows.add_to_team_counts(tx, tenant_id, chain, 1, referrer_id=referrer_id)
    member_rows.set_referrer_columns(
        tx,
        tenant_id,
        member_id,
        referrer_id=referrer_id,
        ancestor_2=chain[1] if len(chain) > 1 else None,
        ancestor_3=chain[2] if len(chain) > 2 else None,
        source=source,
        at=at,
    )
    _write_binding(
        tx,
        tenant_id=tenant_id,
        member_id=member_id,
        referrer_id=referrer_id,
        previous=None,
        kind="bind",
        source=source,
        reason=None,
        actor=actor,
        at=at,
    )


def _ancestor_at(depth: int) -> Any:
    """The ancestor of the member row being updated at `depth`, as a correlated subquery."""
    p = referral_paths
    return (
        select(p.c.ancestor_id)
        .where(
            p.c.tenant_id == members.c.tenant_id,
            p.c.descendant_id == members.c.id,
            p.c.depth == depth,
        )
        .scalar_subquery()
    )


def _refresh_chains_below(tx: Connection, *, tenant_id: str, member_id: str) -> None:
    """Members up to two levels below the moved one have new 2nd/3rd ancestors."""
    p = referral_paths
    near = select(p.c.descendant_id).where(
        p.c.tenant_id == tenant_id, p.c.ancestor_id == member_id, p.c.depth <= 2
    )
    member_rows.refresh_chains(tx, tenant_id, near, _ancestor_at)


def team_summary(ctx: Ctx, *, member_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        member = member_rows.require_member(tx, ctx.tenant_id, member_id)
        by_depth = tx.execute(
            select(referral_paths.c.depth, func.count())
            .where(
                referral_paths.c.tenant_id == ctx.tenant_id,
                referral_paths.c.ancestor_id == member_id,
                referral_paths.c.depth > 0,
            )
            .group_by(referral_paths.c.depth)
            .order_by(referral_paths.c.depth)
        ).all()
    return {
        "member_id": member_id,
        "direct_count": member.direct_count,
        "team_count": member.team_count,
        "by_depth": [{"depth": d, "count": c} for d, c in by_depth],
    }


def team_members(
    ctx: Ctx, *, member_id: str, max_depth: int | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """One indexed query over the closure table."""
    p = referral_paths
    after = checked_cursor(after, "mem")
    with ctx.db.read() as tx:
        member_rows.require_member(tx, ctx.tenant_id, member_id)
        query = (
            select(
                members.c.id, members.c.name, members.c.referrer_id, members.c.tier_id, p.c.depth
            )
            .select_from(
                p.join(
                    members,
                    and_(members.c.tenant_id == p.c.tenant_id, members.c.id == p.c.descendant_id),
                )
            )
            .where(p.c.tenant_id == ctx.tenant_id, p.c.ancestor_id == member_id, p.c.depth > 0)
        )
        if max_depth is not None:
            query = query.where(p.c.depth <= max_depth)
        if after is not None:
            query = query.where(p.c.descendant_id > after)
        rows = tx.execute(query.order_by(p.c.descendant_id).limit(limit)).all()
    return [dict(r._mapping) for r in rows]


# --- many ties at once (an import) ------------------------------------------------------------

BULK_ROWS = 5_000  # rows per statement


@dataclass(frozen=True)
class Ties:
    """Ties to make at once, worked out before anything is written (`plan_ties`): what each
    member's lineage will be, and how much each team grows. Every member tied is unbound: new
    (registered in this transaction, with no path yet) or the top of a tree of its own."""

    new_members: tuple[str, ...]
    referrer_of: Mapping[str, str]  # member → referrer, in the order the ties are recorded
    lineages: Mapping[str, tuple[str, ...]]  # new members and referrers: self first, once tied
    subtrees: Mapping[str, tuple[tuple[str, int], ...]]  # existing members tied: (member, depth)
    direct_added: Mapping[str, int]
    team_added: Mapping[str, int]

    def chain(self, member_id: str) -> tuple[str | None, str | None, str | None]:
        """The referrer, 2nd and 3rd ancestor of a new member."""
        above = (*self.lineages[member_id][1:4], None, None, None)
        return above[0], above[1], above[2]

    def counts(self, member_id: str) -> tuple[int, int]:
        """(direct, team) counts a new member starts with."""
        return self.direct_added.get(member_id, 0), self.team_added.get(member_id, 0)

    def paths(self, tenant_id: str) -> Iterator[dict[str, Any]]:
        """Every row of `referral_paths` the ties add (a new member's own row included)."""
        for member_id in self.new_members:
            for depth, ancestor in enumerate(self.lineages[member_id]):
                yield _path(tenant_id, ancestor, member_id, depth)
        for member_id, referrer_id in self.referrer_of.items():
            if member_id in self.subtrees:
                above = self.lineages[referrer_id]
                for descendant, below in self.subtrees[member_id]:
                    for depth, ancestor in enumerate(above, start=below + 1):
                        yield _path(tenant_id, ancestor, descendant, depth)


def _path(tenant_id: str, ancestor: str, descendant: str, depth: int) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "ancestor_id": ancestor,
        "descendant_id": descendant,
        "depth": depth,
    }


def plan_ties(
    tx: Connection, tenant_id: str, *, new_members: Sequence[str], referrer_of: Mapping[str, str]
) -> Ties:
    """Work out what binding `referrer_of` (member → referrer) does, new members (`new_members`,
    bound or not) included; refuses a tie that would close a cycle. The caller holds the tree
    lock and has checked that every member tied is unbound."""
    new = frozenset(new_members)
    p = referral_paths
    existing_tied = [m for m in referrer_of if m not in new]
    involved = sorted({r for r in referrer_of.values() if r not in new} | set(existing_tied))
    old: dict[str, list[str]] = {}
    subtrees: dict[str, list[tuple[str, int]]] = {m: [] for m in existing_tied}
    for start in range(0, len(involved), BULK_ROWS):
        chunk = involved[start : start + BULK_ROWS]
        for row in tx.execute(
            select(p.c.descendant_id, p.c.ancestor_id)
            .where(p.c.tenant_id == tenant_id, p.c.descendant_id.in_(chunk))
            .order_by(p.c.descendant_id, p.c.depth)
        ):
            old.setdefault(row.descendant_id, []).append(row.ancestor_id)
    for start in range(0, len(existing_tied), BULK_ROWS):
        chunk = existing_tied[start : start + BULK_ROWS]
        for found in tx.execute(
            select(p.c.ancestor_id, p.c.descendant_id, p.c.depth)
            .where(p.c.tenant_id == tenant_id, p.c.ancestor_id.in_(chunk))
            .order_by(p.c.ancestor_id, p.c.depth, p.c.descendant_id)
        ):
            subtrees[found.ancestor_id].append((found.descendant_id, found.depth))
    bound = [m for m in existing_tied if old.get(m) != [m]]
    if bound:
        raise ValueError(f"plan_ties binds only unbound members: {bound[:3]}")

    def own(node: str) -> tuple[str, ...]:
        return (node,) if node in new else tuple(old[node])

    lineages: dict[str, tuple[str, ...]] = {}
    for first in (*new_members, *referrer_of.values()):
        walk: list[str] = []
        walked: set[str] = set()
        node: str | None = first
        while node is not None and node not in lineages:
            if node in walked:
                raise InvalidInput("referral_cycle", member_id=node, referrer_id=first)
            walk.append(node)
            walked.add(node)
            node = referrer_of.get(own(node)[-1])
        tail = lineages[node] if node is not None else ()
        for member_id in reversed(walk):
            tail = own(member_id) + tail
            lineages[member_id] = tail
    direct: dict[str, int] = defaultdict(int)
    team: dict[str, int] = defaultdict(int)
    for member_id in new_members:
        for ancestor in lineages[member_id][1:]:
            team[ancestor] += 1
    for member_id, referrer_id in referrer_of.items():
        direct[referrer_id] += 1
        if member_id in subtrees:
            for ancestor in lineages[referrer_id]:
                team[ancestor] += len(subtrees[member_id])
    return Ties(
        new_members=tuple(new_members),
        referrer_of=dict(referrer_of),
        lineages=lineages,
        subtrees={m: tuple(rows) for m, rows in subtrees.items()},
        direct_added=dict(direct),
        team_added=dict(team),
    )


def write_ties(
    tx: Connection, ties: Ties, *, tenant_id: str, source: str, actor: str, at: datetime
) -> None:
    """Write what `plan_ties` worked out: the paths; the counts, chains and binding of the
    members who were there before; one binding (with its `MemberBound` event) per tie, as
    `attach_new_member` and `set_referrer` write them. The new members' own rows are the
    caller's, written with `Ties.chain` and `Ties.counts`."""
    batch = WriteBatch()
    # In the order of the primary key: the index then grows at its end, page after page.
    paths = sorted(ties.paths(tenant_id), key=lambda r: (r["ancestor_id"], r["descendant_id"]))
    for start in range(0, len(paths), BULK_ROWS):
        batch.insert(referral_paths, paths[start : start + BULK_ROWS])
        batch.flush(tx)
    new = frozenset(ties.new_members)
    grown = set(ties.direct_added) | set(ties.team_added)
    member_rows.add_to_counts(
        tx,
        tenant_id,
        {
            m: (ties.direct_added.get(m, 0), ties.team_added.get(m, 0))
            for m in grown
            if m not in new
        },
    )
    existing_tied = list(ties.subtrees)
    member_rows.mark_bound(tx, tenant_id, existing_tied, source=source, at=at)
    p = referral_paths
    for start in range(0, len(existing_tied), BULK_ROWS):
        near = select(p.c.descendant_id).where(
            p.c.tenant_id == tenant_id,
            p.c.ancestor_id.in_(existing_tied[start : start + BULK_ROWS]),
            p.c.depth <= 2,
        )
        member_rows.refresh_chains(tx, tenant_id, near, _ancestor_at)
    ties_made = list(ties.referrer_of.items())
    for start in range(0, len(ties_made), BULK_ROWS):
        chunk = ties_made[start : start + BULK_ROWS]
        batch.insert(
            referral_bindings,
            [
                {
                    "tenant_id": tenant_id,
                    "id": new_id("bnd"),
                    "member_id": member_id,
                    "referrer_id": referrer_id,
                    "previous_referrer_id": None,
                    "kind": "bind",
                    "source": source,
                    "reason": None,
                    "actor": actor,
                    "occurred_at": at,
                }
                for member_id, referrer_id in chunk
            ],
        )
        stage_events(
            batch,
            tenant_id=tenant_id,
            actor=actor,
            at=at,
            items=[
                Event(
                    "MemberBound",
                    "member",
                    member_id,
                    {
                        "referrer_id": referrer_id,
                        "previous_referrer_id": None,
                        "source": source,
                        "reason": None,
                    },
                )
                for member_id, referrer_id in chunk
            ],
        )
        batch.flush(tx)
