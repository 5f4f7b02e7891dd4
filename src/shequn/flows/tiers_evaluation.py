"""Evaluating members against the tier criteria: one member on request, every member in the
nightly batch, and a member's tier history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from time import perf_counter
from typing import Any

from sqlalchemy import Connection, func, select

from shequn.context import Ctx
from shequn.db import retrying
from shequn.errors import InvalidInput
from shequn.events.service import list_events, record_event
from shequn.events.types import EVENT_TYPES
from shequn.ids import checked_cursor
from shequn.members.repo import require_member
from shequn.tiers.evaluation import (
    apply_changes,
    decide_all,
    evaluate_members,
    upgrade_after_facts,
)
from shequn.tiers.facts import TIER_CHANGED, MemberSet, members, read_standings
from shequn.tiers.repo import load_tiers
from shequn.tiers.rules import FACT_TYPE, Reason, TierSpec, explain, is_met

MAX_PAGE = 200
DEFAULT_CHUNK = 20_000
MAX_FACT_NOTE = 200


def record_fact(
    ctx: Ctx, *, member_id: str, event_type: str, note: str | None = None
) -> dict[str, Any]:
    """Record a participation fact about a member (a challenge completed, an event attended,
    a growth stage reached: any name but the system's own event types) in the event log, and
    move the member up to the tiers the facts now reach, in the same transaction, each change
    recorded with its cause."""
    if not isinstance(event_type, str) or not FACT_TYPE.fullmatch(event_type):
        raise InvalidInput("fact_type_invalid")
    if event_type in EVENT_TYPES:
        raise InvalidInput("fact_type_reserved", type=event_type)
    clean = None if note is None else " ".join(note.split())
    if clean is not None and not 1 <= len(clean) <= MAX_FACT_NOTE:
        raise InvalidInput("fact_note_invalid", max=MAX_FACT_NOTE)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        row = require_member(tx, ctx.tenant_id, member_id, for_update=True)
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type=event_type,
            subject_type="member",
            subject_id=member_id,
            payload={} if clean is None else {"note": clean},
        )
        made = upgrade_after_facts(
            tx, tenant_id=ctx.tenant_id, actor=ctx.actor, at=now, member_ids=[member_id]
        )
    change = made[-1] if made else None
    return {
        "member_id": member_id,
        "event_type": event_type,
        "recorded_at": now,
        "previous_tier_id": row.tier_id,
        "tier_id": change.to_tier if change else row.tier_id,
        "changed": change is not None,
        "change": None
        if change is None
        else {
            "from_tier_id": change.from_tier,
            "to_tier_id": change.to_tier,
            "reason": change.reason.value,
            "source": "fact",
            "cause": change.cause,
        },
    }


def evaluate_member(ctx: Ctx, *, member_id: str) -> dict[str, Any]:
    """Evaluate one member now, as the nightly batch would (upgrade or, for a tier that
    demotes, demotion), record the change if any, and show how each tier's criteria stand."""
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        tier_list = load_tiers(tx, ctx.tenant_id)
        row = require_member(tx, ctx.tenant_id, member_id, for_update=True)
        standings, changes = evaluate_members(
            tx,
            tenant_id=ctx.tenant_id,
            tier_list=tier_list,
            member_ids=[member_id],
            now=now,
            allow_demotion=True,
        )
        made = apply_changes(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            changes=changes,
            source="evaluation",
        )
    change = made[0] if made else None
    facts = standings[0].facts if standings else {}
    return {
        "member_id": member_id,
        "previous_tier_id": row.tier_id,
        "tier_id": change.to_tier if change else row.tier_id,
        "changed": change is not None,
        "change": None
        if change is None
        else {
            "from_tier_id": change.from_tier,
            "to_tier_id": change.to_tier,
            "reason": change.reason.value,
            "source": "evaluation",
            "cause": change.cause,
        },
        "tiers": [
            {
                "tier_id": t.id,
                "name": t.name,
                "rank": t.rank,
                "met": is_met(t.criteria, facts),
                "criteria": explain(t.criteria, facts),
            }
            for t in tier_list
            if t.criteria is not None
        ],
        "evaluated_at": now,
    }


def tier_history(
    ctx: Ctx, *, member_id: str, after: str | None = None, limit: int = 50
) -> dict[str, Any]:
    """Every change of the member's tier, oldest first, each with its cause; pass
    `next_after` back as `after` for the next page."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit_out_of_range", low=1, high=MAX_PAGE)
    after = checked_cursor(after, "evt")
    with ctx.db.read() as tx:
        require_member(tx, ctx.tenant_id, member_id)
        names = {t.id: t.name for t in load_tiers(tx, ctx.tenant_id)}
        rows = list_events(
            tx,
            tenant_id=ctx.tenant_id,
            subject_type="member",
            subject_id=member_id,
            type=TIER_CHANGED,
            after=after,
            limit=limit + 1,
        )
    page = rows[:limit]
    return {
        "member_id": member_id,
        "items": [_history_item(r, names) for r in page],
        "next_after": page[-1]["id"] if len(rows) > limit else None,
    }


def _history_item(row: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    payload = row["payload"]
    return {
        "id": row["id"],
        "at": row["occurred_at"],
        "from_tier_id": payload.get("from"),
        "from_tier": names.get(payload.get("from") or ""),
        "to_tier_id": payload.get("to"),
        "to_tier": names.get(payload.get("to") or ""),
        "reason": payload.get("reason"),
        # Changes recorded before sources were named: by hand, or by a payment.
        "source": payload.get("source")
        or ("manual" if payload.get("reason") == "manual" else "payment"),
        "cause": payload.get("cause"),
        "actor": row["actor"],
    }


@dataclass
class BatchTotals:
    members: int = 0
    candidates: int = 0
    upgraded: int = 0
    demoted: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 3)}


Progress = Callable[[int, int], None]


def _chunk_end(tx: Connection, tenant_id: str, after: str | None, size: int) -> str | None:
    """The id of the `size`-th member after `after` (None: fewer are left)."""
    query = select(members.c.id).where(members.c.tenant_id == tenant_id)
    if after is not None:
        query = query.where(members.c.id > after)
    found = tx.execute(query.order_by(members.c.id).offset(size - 1).limit(1)).scalar()
    return None if found is None else str(found)


def _evaluate_chunk(
    ctx: Ctx, tier_list: list[TierSpec], after: str | None, size: int, totals: BatchTotals
) -> str | None:
    """One chunk: its candidates read set-based, decided, and their changes written in a
    transaction of their own (each a compare-and-set). Returns the chunk's last id."""
    now = ctx.clock.now()
    with ctx.db.read() as tx:
        upto = _chunk_end(tx, ctx.tenant_id, after, size)
        standings = read_standings(
            tx,
            tenant_id=ctx.tenant_id,
            tier_list=tier_list,
            member_set=MemberSet(after=after, upto=upto),
            now=now,
            candidates_only=True,
        )
    changes = decide_all(tier_list, standings, now=now, allow_demotion=True)
    if changes:
        with ctx.db.transaction() as tx:
            made = apply_changes(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                changes=changes,
                source="batch",
            )
        totals.upgraded += sum(c.reason is Reason.UPGRADE for c in made)
        totals.demoted += sum(c.reason is Reason.DEMOTION for c in made)
    totals.candidates += len(standings)
    return upto


def evaluate_all(
    ctx: Ctx, *, chunk: int = DEFAULT_CHUNK, progress: Progress | None = None
) -> dict[str, Any]:
    """The nightly evaluation: every member of the tenant, in chunks of `chunk` members in id
    order, each chunk one set-based read of the members whose tier may change and one write
    of their changes. `progress(done, total)` after each chunk."""
    started = perf_counter()
    with ctx.db.read() as tx:
        tier_list = load_tiers(tx, ctx.tenant_id)
        total = int(
            tx.execute(
                select(func.count())
                .select_from(members)
                .where(members.c.tenant_id == ctx.tenant_id)
            ).scalar_one()
        )
    totals = BatchTotals(members=total)
    if progress is not None:
        progress(0, total)
    if any(t.criteria is not None for t in tier_list):
        after: str | None = None
        done = 0
        while True:
            upto = retrying(_evaluate_chunk, ctx, tier_list, after, chunk, totals)
            done = total if upto is None else min(total, done + chunk)
            if progress is not None:
                progress(done, total)
            if upto is None:
                break
            after = upto
    totals.seconds = perf_counter() - started
    return totals.as_dict()
