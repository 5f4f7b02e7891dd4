"""The growth-path follower: reads each tenant's business event feed after its cursor and
moves the members the events concern along the growth path, then up the tiers the stage
reached may open, so that stages follow paid orders, referred buyers, bindings, community
joins and ingested activities as they arrive, without any work on the order payment path.

An event names the members whose facts it moves (`members_of`): the buyer of a paid or
refunded order and, on a first purchase, the buyer's referrer (a referred buyer); the member
bound and both its new and former referrer; the member who joined a community or group or
whose activity was ingested. A change of the path itself and a bulk import move facts of
members no event names: they start a sweep that re-reads every member of the tenant, a chunk
per transaction, from `sweep_after` on.

Each transaction takes the tenant's cursor row first, reads a bounded batch of events past
it not followed yet, evaluates their members (`shequn.community.path.service.evaluate_in`,
which records every stage change as `GrowthStageChanged`, then
`shequn.tiers.evaluation.upgrade_after_facts`) and marks the events followed: a pass that
dies leaves nothing half done, and one run again, or a second follower, finds the same work
left. The cursor trails the newest event by `LAG` (an event recorded by a transaction that
commits late carries an older id) and the markers before it are pruned as it moves.

`shequn serve` and the demo run it on a daemon thread (`start_growth_follower`), every
`SHEQUN_GROWTH_FOLLOW_SECONDS` (2 s by default); `shequn community-ops follow-growth` runs
one pass for a tenant."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, exists, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from shequn.clock import Clock, SystemClock
from shequn.community.common import ids_in, insert_ignoring
from shequn.community.path.service import CHUNK, evaluate_in
from shequn.community.path.tables import growth_path_cursors, growth_path_followed
from shequn.context import Ctx
from shequn.db import Database
from shequn.errors import DomainError
from shequn.events.tables import events
from shequn.ids import encode_body
from shequn.locks import Lock, take
from shequn.members.tables import members
from shequn.orders.tables import orders
from shequn.tenancy.tables import tenants
from shequn.tiers.evaluation import upgrade_after_facts

log = logging.getLogger(__name__)

ACTOR = "system"
# Events per transaction: each names at most three members, so a transaction evaluates at
# most 3 × BATCH members, in statements bounded by `evaluate_in`.
BATCH = 300
LAG = timedelta(minutes=10)
DEFAULT_INTERVAL = 2.0
INTERVAL_VARIABLE = "SHEQUN_GROWTH_FOLLOW_SECONDS"

# The events whose subject is the member whose facts moved.
MEMBER_EVENTS = frozenset(
    {"MemberRegistered", "MemberBound", "MemberRebound", "CommunityJoined", "GroupJoined"}
    | {"ActivityRecorded"}
)
# The events of an order whose buyer's purchase facts moved.
ORDER_EVENTS = frozenset({"OrderPaid", "OrderRefunded", "LatePaymentRefunded"})
# Events after which any member's facts or the path itself may have changed.
SWEEP_EVENTS = frozenset(
    {"GrowthPathChanged", "MembersImported", "OrdersImported", "ReferralsImported"}
    | {"MembersPlaced", "GroupsImported"}
)
FOLLOWED = MEMBER_EVENTS | ORDER_EVENTS | SWEEP_EVENTS


@dataclass
class FollowTotals:
    """What a pass did: events followed, members evaluated (from events and sweeps), stage
    changes, and members re-read by a sweep."""

    events: int = 0
    evaluated: int = 0
    changed: int = 0
    swept: int = 0
    tier_changes: int = 0

    def add(self, other: FollowTotals) -> None:
        self.events += other.events
        self.evaluated += other.evaluated
        self.changed += other.changed
        self.swept += other.swept
        self.tier_changes += other.tier_changes

    def as_dict(self) -> dict[str, int]:
        return {
            "events": self.events,
            "evaluated": self.evaluated,
            "changed": self.changed,
            "swept": self.swept,
            "tier_changes": self.tier_changes,
        }


def _floor_id(ms: int) -> str:
    """The smallest event id made at or after `ms` (ids lead with their time)."""
    return "evt_" + encode_body(max(ms, 0), 0)


def _cursor(tx: Connection, tenant_id: str, *, lock: bool) -> Any:
    c = growth_path_cursors.c
    query = select(c.after_event_id, c.sweep_after).where(c.tenant_id == tenant_id)
    return tx.execute(query.with_for_update() if lock else query).first()


def _lock_cursor(tx: Connection, tenant_id: str, at: datetime) -> Any:
    """The tenant's cursor row, locked (created at the start of the feed the first time), so
    that two followers of one tenant take turns."""
    take(tx, Lock.GROWTH_STAGES)
    tx.execute(
        insert_ignoring(tx, growth_path_cursors, ("tenant_id",)).values(
            tenant_id=tenant_id, after_event_id="", sweep_after=None, updated_at=at
        )
    )
    return _cursor(tx, tenant_id, lock=True)


def _pending(tx: Connection, tenant_id: str, after: str, limit: int) -> list[Any]:
    e, f = events.c, growth_path_followed.c
    return list(
        tx.execute(
            select(e.id, e.type, e.subject_type, e.subject_id, e.payload)
            .where(
                e.tenant_id == tenant_id,
                e.type.in_(sorted(FOLLOWED)),
                e.id > after,
                ~exists().where(f.tenant_id == e.tenant_id, f.event_id == e.id),
            )
            .order_by(e.id)
            .limit(limit)
        ).all()
    )


def members_of(tx: Connection, tenant_id: str, batch: Sequence[Any]) -> list[str]:
    """The members whose facts the events of `batch` moved (buyers, their referrers, members
    bound and their referrers, members who joined or acted), each once, in id order."""
    named: set[str] = set()
    buyers_of_orders: set[str] = set()
    first_buyers: set[str] = set()
    for event in batch:
        payload: Mapping[str, Any] = event.payload or {}
        if event.type in MEMBER_EVENTS and event.subject_type == "member":
            named.add(event.subject_id)
            for key in ("referrer_id", "previous_referrer_id"):
                if event.type in ("MemberBound", "MemberRebound") and payload.get(key):
                    named.add(str(payload[key]))
        elif event.type == "OrderPaid" and payload.get("buyer_id"):
            named.add(str(payload["buyer_id"]))
            if payload.get("first_purchase", True):
                first_buyers.add(str(payload["buyer_id"]))
        elif event.type in ORDER_EVENTS:
            buyers_of_orders.add(event.subject_id)
    if buyers_of_orders:
        o = orders.c
        named |= set(
            tx.execute(
                select(o.buyer_id).where(
                    o.tenant_id == tenant_id, ids_in(tx, o.id, sorted(buyers_of_orders))
                )
            ).scalars()
        )
    if first_buyers:
        m = members.c
        named |= {
            r
            for r in tx.execute(
                select(m.referrer_id).where(
                    m.tenant_id == tenant_id, ids_in(tx, m.id, sorted(first_buyers))
                )
            ).scalars()
            if r
        }
    return sorted(named)


def _evaluate(
    tx: Connection, tenant_id: str, member_ids: Sequence[str], at: datetime, totals: FollowTotals
) -> None:
    if not member_ids:
        return
    moved = evaluate_in(tx, tenant_id=tenant_id, member_ids=member_ids, at=at, actor=ACTOR)
    tiers = upgrade_after_facts(tx, tenant_id=tenant_id, actor=ACTOR, at=at, member_ids=member_ids)
    totals.evaluated += len(member_ids)
    totals.changed += len(moved)
    totals.tier_changes += len(tiers)


def _follow_batch(ctx: Ctx, *, lag: timedelta) -> tuple[FollowTotals, bool]:
    """One transaction: the next batch of events followed (and the cursor moved on once the
    feed is read to its end); returns what was done and whether events remain."""
    now = ctx.clock.now()
    totals = FollowTotals()
    with ctx.db.transaction() as tx:
        cursor = _lock_cursor(tx, ctx.tenant_id, now)
        batch = _pending(tx, ctx.tenant_id, cursor.after_event_id, BATCH)
        _evaluate(tx, ctx.tenant_id, members_of(tx, ctx.tenant_id, batch), now, totals)
        if batch:
            tx.execute(
                insert(growth_path_followed),
                [{"tenant_id": ctx.tenant_id, "event_id": e.id, "followed_at": now} for e in batch],
            )
        values: dict[str, Any] = {}
        if any(e.type in SWEEP_EVENTS for e in batch):
            values["sweep_after"] = ""  # from the first member, again if one was under way
        more = len(batch) == BATCH
        if not more:
            floor = _floor_id(time.time_ns() // 1_000_000 - int(lag.total_seconds() * 1000))
            if floor > cursor.after_event_id:
                values["after_event_id"] = floor
                f = growth_path_followed.c
                tx.execute(
                    delete(growth_path_followed).where(
                        f.tenant_id == ctx.tenant_id, f.event_id <= floor
                    )
                )
        if values:
            c = growth_path_cursors.c
            tx.execute(
                update(growth_path_cursors)
                .where(c.tenant_id == ctx.tenant_id)
                .values(**values, updated_at=now)
            )
    totals.events = len(batch)
    return totals, more


def _sweep_chunk(ctx: Ctx) -> tuple[FollowTotals, bool]:
    """One transaction of a sweep: the next chunk of the tenant's members evaluated and the
    sweep moved on past them (ended after the last)."""
    now = ctx.clock.now()
    totals = FollowTotals()
    with ctx.db.transaction() as tx:
        cursor = _lock_cursor(tx, ctx.tenant_id, now)
        if cursor.sweep_after is None:
            return totals, False
        m = members.c
        chunk = list(
            tx.execute(
                select(m.id)
                .where(
                    m.tenant_id == ctx.tenant_id,
                    m.id > cursor.sweep_after,
                    m.anonymised_at.is_(None),
                )
                .order_by(m.id)
                .limit(CHUNK)
            ).scalars()
        )
        _evaluate(tx, ctx.tenant_id, chunk, now, totals)
        more = len(chunk) == CHUNK
        c = growth_path_cursors.c
        tx.execute(
            update(growth_path_cursors)
            .where(c.tenant_id == ctx.tenant_id)
            .values(sweep_after=chunk[-1] if more else None, updated_at=now)
        )
    totals.swept = len(chunk)
    return totals, more


def has_work(db: Database, tenant_id: str) -> bool:
    """Whether the tenant has events to follow or a sweep under way (a read, so that an idle
    tenant costs no write transaction)."""
    with db.read() as tx:
        cursor = _cursor(tx, tenant_id, lock=False)
        if cursor is not None and cursor.sweep_after is not None:
            return True
        after = cursor.after_event_id if cursor is not None else ""
        return bool(_pending(tx, tenant_id, after, 1))


def follow_growth(
    ctx: Ctx, *, lag: timedelta = LAG, progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """One pass for the tenant: every event not followed yet, then the sweep under way, if
    any, to its end; `progress` hears the events and members done."""
    totals = FollowTotals()
    if not has_work(ctx.db, ctx.tenant_id):
        return totals.as_dict()
    more = True
    while more:
        done, more = _follow_batch(ctx, lag=lag)
        totals.add(done)
        if progress is not None and done.events:
            progress(done.events)
    more = True
    while more:
        done, more = _sweep_chunk(ctx)
        totals.add(done)
        if progress is not None and done.swept:
            progress(done.swept)
    return totals.as_dict()


def follow_all_tenants(db: Database, *, clock: Clock, lag: timedelta = LAG) -> dict[str, int]:
    """One pass over every tenant with work; a tenant whose pass fails is tried again on the
    next pass and does not hold the others up."""
    totals = FollowTotals()
    with db.read() as tx:
        tenant_ids = list(tx.execute(select(tenants.c.tenant_id).order_by(tenants.c.tenant_id)))
    for (tenant_id,) in tenant_ids:
        ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor=ACTOR)
        try:
            done = follow_growth(ctx, lag=lag)
        except (SQLAlchemyError, DomainError):
            log.exception("growth-path follower failed for tenant %s; trying again", tenant_id)
            continue
        totals.add(FollowTotals(**done))
    return totals.as_dict()


def follow_interval(environ: Mapping[str, str]) -> float:
    """The seconds between passes, from SHEQUN_GROWTH_FOLLOW_SECONDS (0.1 to 3,600; the
    default otherwise)."""
    raw = environ.get(INTERVAL_VARIABLE)
    if raw is None:
        return DEFAULT_INTERVAL
    try:
        seconds = float(raw)
    except ValueError:
        return DEFAULT_INTERVAL
    return seconds if 0.1 <= seconds <= 3_600 else DEFAULT_INTERVAL


@dataclass
class RunningFollower:
    """A follower running on a thread of its own; `stop` ends it after the pass in hand."""

    thread: threading.Thread
    stopping: threading.Event

    def stop(self, timeout: float | None = None) -> None:
        self.stopping.set()
        self.thread.join(timeout)


def start_growth_follower(
    db: Database,
    *,
    clock: Clock | None = None,
    interval: float = DEFAULT_INTERVAL,
    lag: timedelta = LAG,
    on_pass: Callable[[dict[str, int]], None] | None = None,
) -> RunningFollower:
    """Follow every tenant's feed on a daemon thread, a pass every `interval` seconds, until
    `stop()` (for `shequn serve` and the demo); `on_pass` hears each pass that did something
    (on the follower's thread)."""
    stopping = threading.Event()
    chosen = clock or SystemClock()

    def run() -> None:
        while not stopping.is_set():
            try:
                done = follow_all_tenants(db, clock=chosen, lag=lag)
            except SQLAlchemyError:
                log.exception("growth-path follower pass failed; trying again")
            else:
                if on_pass is not None and any(done.values()):
                    on_pass(done)
            stopping.wait(interval)

    thread = threading.Thread(target=run, name="shequn-growth-follower", daemon=True)
    running = RunningFollower(thread, stopping)
    thread.start()
    return running
