"""Evaluating members against the tier criteria and recording what changes, inside the
transaction of the use case that asks (a payment, an evaluation asked for, a batch chunk, an
event that records a participation fact).

Every change of a member's tier is a `MemberTierChanged` event about the member, its payload
naming the tiers, the reason, the source and the facts that caused it: that is the member's
tier history, and the last one tells since when the member holds its tier (the hold period of
a tier that demotes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, column, text, update, values

from shequn.events.service import Event, record_events
from shequn.locks import Lock, take
from shequn.tiers.facts import TIER_CHANGED, MemberSet, members, read_standings
from shequn.tiers.repo import load_tiers
from shequn.tiers.rules import (
    Standing,
    TierChange,
    TierSpec,
    decide,
    with_one_more_direct_customer,
)

SOURCES = ("payment", "evaluation", "batch", "fact")
_ROWS_PER_STATEMENT = 5_000


def decide_all(
    tier_list: Sequence[TierSpec],
    standings: Sequence[Standing],
    *,
    now: datetime,
    allow_demotion: bool,
) -> list[TierChange]:
    changes = []
    for standing in standings:
        change = decide(tier_list, standing, now=now, allow_demotion=allow_demotion)
        if change is not None:
            changes.append(change)
    return changes


def change_payload(change: TierChange, source: str) -> dict[str, Any]:
    return {
        "from": change.from_tier,
        "to": change.to_tier,
        "reason": change.reason.value,
        "source": source,
        "cause": change.cause,
    }


def apply_changes(
    tx: Connection,
    *,
    tenant_id: str,
    actor: str,
    at: datetime,
    changes: Sequence[TierChange],
    source: str,
) -> list[TierChange]:
    """Move each member to its new tier if it still holds the tier the change was decided
    from (a compare-and-set: a member another use case moved meanwhile keeps that move), and
    record each change made; returns those made."""
    if not changes:
        return []
    take(tx, Lock.MEMBERS)
    made: set[str] = set()
    for start in range(0, len(changes), _ROWS_PER_STATEMENT):
        part = changes[start : start + _ROWS_PER_STATEMENT]
        made.update(_move(tx, tenant_id=tenant_id, at=at, part=part))
    done = [c for c in changes if c.member_id in made]
    record_events(
        tx,
        tenant_id=tenant_id,
        actor=actor,
        at=at,
        items=[Event(TIER_CHANGED, "member", c.member_id, change_payload(c, source)) for c in done],
    )
    return done


# On PostgreSQL the wanted moves arrive as one JSON parameter (the statement's text is the same
# for any number of rows, and the driver adapts one value instead of three per row).
_MOVE_PG = text(
    """
    UPDATE members AS m SET tier_id = w.to_tier, updated_at = :at
    FROM json_to_recordset(CAST(:rows AS json)) AS w(member_id text, from_tier text, to_tier text)
    WHERE m.tenant_id = :tenant_id AND m.id = w.member_id
      AND m.tier_id IS NOT DISTINCT FROM w.from_tier
    RETURNING m.id
    """
)


def _move(tx: Connection, *, tenant_id: str, at: datetime, part: Sequence[TierChange]) -> list[str]:
    """Move the members of `part` that still hold the tier each change was decided from; the
    ids of those moved."""
    if tx.dialect.name == "postgresql":
        rows = json.dumps(
            [
                {"member_id": c.member_id, "from_tier": c.from_tier, "to_tier": c.to_tier}
                for c in part
            ]
        )
        found = tx.execute(_MOVE_PG, {"at": at, "rows": rows, "tenant_id": tenant_id})
        return [str(i) for i in found.scalars()]
    wanted = (
        values(
            column("member_id", String),
            column("from_tier", String),
            column("to_tier", String),
            name="wanted",
        )
        .data([(c.member_id, c.from_tier, c.to_tier) for c in part])
        .cte("wanted")
    )
    m = members
    statement = (
        update(m)
        .where(
            m.c.tenant_id == tenant_id,
            m.c.id == wanted.c.member_id,
            m.c.tier_id.is_not_distinct_from(wanted.c.from_tier),
        )
        .values(tier_id=wanted.c.to_tier, updated_at=at)
        .returning(m.c.id)
    )
    return [str(i) for i in tx.execute(statement).scalars()]


def evaluate_members(
    tx: Connection,
    *,
    tenant_id: str,
    tier_list: Sequence[TierSpec],
    member_ids: Sequence[str],
    now: datetime,
    allow_demotion: bool,
    counted_customer_of: str | None = None,
) -> tuple[list[Standing], list[TierChange]]:
    """The standing of each member and the changes it calls for. `counted_customer_of` is a
    referrer whose new paying customer the caller is writing (not yet in the tables)."""
    if not any(t.criteria is not None for t in tier_list) or not member_ids:
        return [], []
    standings = read_standings(
        tx,
        tenant_id=tenant_id,
        tier_list=tier_list,
        member_set=MemberSet(ids=tuple(sorted(set(member_ids)))),
        now=now,
    )
    if counted_customer_of is not None:
        standings = [
            Standing(s.member_id, s.tier_id, with_one_more_direct_customer(s.facts), s.held_since)
            if s.member_id == counted_customer_of
            else s
            for s in standings
        ]
    return standings, decide_all(tier_list, standings, now=now, allow_demotion=allow_demotion)


def upgrade_after_facts(
    tx: Connection,
    *,
    tenant_id: str,
    actor: str,
    at: datetime,
    member_ids: Sequence[str],
    tier_list: Sequence[TierSpec] | None = None,
) -> list[TierChange]:
    """For a use case that has just recorded participation facts (events whose subject is a
    member, such as `ChallengeCompleted`): move those members up to the tiers the facts now
    reach, in its transaction, each change recorded with its cause. Call it before taking any
    lock after members' (`shequn.locks`)."""
    if tier_list is None:
        tier_list = load_tiers(tx, tenant_id)
    _, changes = evaluate_members(
        tx,
        tenant_id=tenant_id,
        tier_list=tier_list,
        member_ids=member_ids,
        now=at,
        allow_demotion=False,
    )
    return apply_changes(
        tx, tenant_id=tenant_id, actor=actor, at=at, changes=changes, source="fact"
    )
