"""A staff account leaving: its members and groups handed to other accounts within WeChat
Work's limits, history kept (every transfer asked for or held back is a row).

`hand_over` starts the handover or carries it on: transfers whose 24 hours passed without a
refusal are accepted, the account's members not yet in flight are spread over the receivers
(never past a receiver's room or a member's two transfers in 90 days), in calls of at most
100 members to one receiver each, and its groups go to the fallback receiver (or the
account's backup), at most 300 a day. A member it cannot place yet is listed with why and
from when (`waiting`), never dropped. `transfers.record_outcomes` takes what the platform
said of each transfer: refused (the member stays listed), receiver full (tried again with
the fallback receiver), accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from shequn.community.common import ids_in
from shequn.community.outbox.rules import Message
from shequn.community.outbox.service import enqueue_messages
from shequn.community.staff.rules import (
    COUNTED,
    TRANSFER_WINDOW,
    Receiver,
    Transferable,
    TransferStatus,
    WaitReason,
    groups_to_hand_over_today,
    plan_member_handover,
)
from shequn.community.staff.service import require_account
from shequn.community.staff.transfers import accept_due, adjust_counts, item_row, summary_of
from shequn.community.tables import (
    groups,
    handover_items,
    handovers,
    staff_accounts,
    staff_assignments,
)
from shequn.context import Ctx
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import Event, record_events
from shequn.i18n import translate
from shequn.ids import new_id
from shequn.locks import Lock, lock_rows, take
from shequn.tenancy.repo import load_settings
from shequn.tenancy.rules import local_day_start

MAX_RUN = 10_000


def _open_handover(tx: Connection, tenant_id: str, account_id: str) -> Any:
    return tx.execute(
        select(handovers).where(
            handovers.c.tenant_id == tenant_id,
            handovers.c.from_account_id == account_id,
            handovers.c.status == "open",
        )
    ).first()


def _receivers(
    tx: Connection, tenant_id: str, leaving_id: str, chosen: Sequence[str] | None
) -> list[Any]:
    s = staff_accounts.c
    query = select(staff_accounts).where(
        s.tenant_id == tenant_id, s.id != leaving_id, s.status == "active"
    )
    if chosen:
        query = query.where(s.id.in_(sorted(set(chosen))))
    return list(tx.execute(query.order_by(s.id)).all())


def _recent_transfers(
    tx: Connection, tenant_id: str, member_ids: Sequence[str], now: datetime
) -> dict[str, tuple[datetime, ...]]:
    h = handover_items.c
    rows = tx.execute(
        select(h.subject_id, h.requested_at).where(
            h.tenant_id == tenant_id,
            h.kind == "member",
            ids_in(tx, h.subject_id, list(member_ids)),
            h.status.in_([s.value for s in COUNTED]),
            h.requested_at > now - TRANSFER_WINDOW,
        )
    ).all()
    out: dict[str, list[datetime]] = {}
    for member_id, at in rows:
        out.setdefault(member_id, []).append(at)
    return {m: tuple(v) for m, v in out.items()}


def hand_over(
    ctx: Ctx,
    *,
    account_id: str,
    fallback_account_id: str | None = None,
    receivers: Sequence[str] | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Start or carry on the handover of a leaving account (see the module's docstring).
    With `limit`, one run takes at most that many of its members (in id order, after
    `after`) and answers `next_after` to go on from; groups move in the first run."""
    if limit is not None and not 1 <= limit <= MAX_RUN:
        raise InvalidInput("limit_invalid", max=MAX_RUN)
    if fallback_account_id == account_id or (receivers and account_id in receivers):
        raise InvalidInput("handover_to_self")
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        settings = load_settings(tx, ctx.tenant_id)
        named = [account_id, *(receivers or [])]
        if fallback_account_id:
            named.append(fallback_account_id)
        pool_ids = [r.id for r in _receivers(tx, ctx.tenant_id, account_id, receivers)]
        # The giver and every receiver, locked in key order before any count moves.
        known = {
            r.id
            for r in lock_rows(
                tx, Lock.STAFF_ACCOUNTS, staff_accounts, ctx.tenant_id, [*named, *pool_ids]
            )
        }
        for needed in named:
            if needed not in known:
                raise NotFound("staff_account_not_found", id=needed)
        leaving = require_account(tx, ctx.tenant_id, account_id)
        if leaving.status == "left":
            raise Conflict("staff_account_left", id=account_id)
        pool = _receivers(tx, ctx.tenant_id, account_id, receivers)
        fallback = fallback_account_id or leaving.backup_account_id
        handover = _open_handover(tx, ctx.tenant_id, account_id)
        started = handover is None
        if handover is None:
            handover_id = new_id("hov")
            tx.execute(
                handovers.insert().values(
                    tenant_id=ctx.tenant_id,
                    id=handover_id,
                    from_account_id=account_id,
                    fallback_account_id=fallback,
                    status="open",
                    next_call=1,
                    started_at=now,
                    updated_at=now,
                )
            )
            tx.execute(
                update(staff_accounts)
                .where(
                    staff_accounts.c.tenant_id == ctx.tenant_id, staff_accounts.c.id == account_id
                )
                .values(status="leaving", updated_at=now)
            )
            next_call = 1
        else:
            handover_id = handover.id
            next_call = handover.next_call
            if fallback_account_id is not None:
                tx.execute(
                    update(handovers)
                    .where(handovers.c.tenant_id == ctx.tenant_id, handovers.c.id == handover_id)
                    .values(fallback_account_id=fallback_account_id)
                )
            fallback = fallback_account_id or handover.fallback_account_id or fallback
        accepted = accept_due(tx, ctx.tenant_id, handover_id, now)
        h = handover_items.c
        in_flight = set(
            tx.execute(
                select(h.subject_id).where(
                    h.tenant_id == ctx.tenant_id,
                    h.handover_id == handover_id,
                    h.kind == "member",
                    h.status == TransferStatus.PENDING.value,
                )
            ).scalars()
        )
        last_full = dict(
            tx.execute(
                select(h.subject_id, func.max(h.to_account_id))
                .where(
                    h.tenant_id == ctx.tenant_id,
                    h.handover_id == handover_id,
                    h.status == TransferStatus.RECEIVER_FULL.value,
                )
                .group_by(h.subject_id)
            ).all()
        )
        a = staff_assignments.c
        listed = (
            select(a.member_id)
            .where(a.tenant_id == ctx.tenant_id, a.staff_account_id == account_id)
            .order_by(a.member_id)
        )
        if after is not None:
            listed = listed.where(a.member_id > after)
        if limit is not None:
            listed = listed.limit(limit)
        considered = list(tx.execute(listed).scalars())
        next_after = considered[-1] if limit is not None and len(considered) == limit else None
        members = [m for m in considered if m not in in_flight]
        recent = _recent_transfers(tx, ctx.tenant_id, members, now)
        plan = plan_member_handover(
            [Transferable(m, recent.get(m, ()), last_full.get(m)) for m in members],
            [Receiver(r.id, r.friend_cap - r.member_count) for r in pool],
            now=now,
            first_call=next_call,
        )
        # What waited is planned again: its new row says whether it still waits.
        tx.execute(
            delete(handover_items).where(
                h.tenant_id == ctx.tenant_id,
                h.handover_id == handover_id,
                h.status == TransferStatus.WAITING.value,
                h.kind == "member",
                ids_in(tx, h.subject_id, considered),
            )
        )
        if after is None:
            tx.execute(
                delete(handover_items).where(
                    h.tenant_id == ctx.tenant_id,
                    h.handover_id == handover_id,
                    h.status == TransferStatus.WAITING.value,
                    h.kind == "group",
                )
            )
        item_rows = [
            item_row(
                ctx.tenant_id,
                handover_id,
                "member",
                m,
                account_id,
                now,
                to=to,
                status=TransferStatus.PENDING,
                call=call,
            )
            for m, to, call in plan.transfers
        ] + [
            item_row(
                ctx.tenant_id,
                handover_id,
                "member",
                m,
                account_id,
                now,
                status=TransferStatus.WAITING,
                reason=reason,
                not_before=when,
            )
            for m, reason, when in plan.waiting
        ]
        gains: dict[str, int] = {}
        for _, to, _ in plan.transfers:
            gains[to] = gains.get(to, 0) + 1
        adjust_counts(tx, ctx.tenant_id, gains, now)
        calls = _calls(plan.transfers)
        group_rows: list[dict[str, Any]] = []
        groups_waiting: list[dict[str, Any]] = []
        if after is None:
            group_rows, groups_waiting = _hand_over_groups(
                tx, ctx, handover_id, leaving, fallback, pool, settings.time_zone, now
            )
        item_rows.extend(group_rows)
        item_rows.extend(groups_waiting)
        if item_rows:
            tx.execute(handover_items.insert(), item_rows)
        last_call = max((c for _, _, c in plan.transfers), default=next_call - 1)
        tx.execute(
            update(handovers)
            .where(handovers.c.tenant_id == ctx.tenant_id, handovers.c.id == handover_id)
            .values(next_call=last_call + 1, updated_at=now)
        )
        events = [
            Event(
                "MemberTransferRequested",
                "staff_account",
                account_id,
                {"handover_id": handover_id, "to_account_id": to, "call": call, "member_ids": ids},
            )
            for (to, call), ids in calls.items()
        ]
        if started:
            events.insert(
                0,
                Event("HandoverStarted", "handover", handover_id, {"from_account_id": account_id}),
            )
        events.extend(
            Event(
                "GroupHandedOver",
                "group",
                r["subject_id"],
                {"from_account_id": account_id, "to_account_id": r["to_account_id"]},
            )
            for r in group_rows
        )
        record_events(tx, tenant_id=ctx.tenant_id, actor=ctx.actor, at=now, items=events)
        enqueue_messages(
            tx,
            tenant_id=ctx.tenant_id,
            at=now,
            messages=[
                Message(
                    dedupe_key=f"transfer:{handover_id}:{call}",
                    kind="transfer_call",
                    body=translate("community.handover.call", count=len(ids), call=call),
                    staff_account_id=account_id,
                    payload={"to_account_id": to, "member_ids": ids, "call": call},
                )
                for (to, call), ids in calls.items()
            ],
        )
        summary = summary_of(tx, ctx.tenant_id, handover_id)
    summary["accepted_now"] = accepted
    summary["requested_now"] = len(plan.transfers)
    summary["calls_now"] = len(calls)
    summary["next_after"] = next_after
    return summary


def _calls(transfers: Sequence[tuple[str, str, int]]) -> dict[tuple[str, int], list[str]]:
    out: dict[tuple[str, int], list[str]] = {}
    for member_id, to, call in transfers:
        out.setdefault((to, call), []).append(member_id)
    return out


def _hand_over_groups(
    tx: Connection,
    ctx: Ctx,
    handover_id: str,
    leaving: Any,
    fallback: str | None,
    pool: Sequence[Any],
    time_zone: str,
    now: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The leaving owner's groups go to the fallback receiver (else the receiver with most
    room), at most 300 a day; the rest wait for the next local day."""
    g = groups.c
    owned = list(
        tx.execute(
            select(g.id)
            .where(g.tenant_id == ctx.tenant_id, g.staff_account_id == leaving.id)
            .order_by(g.number, g.id)
        ).scalars()
    )
    if not owned:
        return [], []
    target = fallback
    if target is None and pool:
        target = max(pool, key=lambda r: (r.friend_cap - r.member_count, r.id)).id
    if target is None:
        return [], [
            item_row(
                ctx.tenant_id,
                handover_id,
                "group",
                gid,
                leaving.id,
                now,
                status=TransferStatus.WAITING,
                reason=WaitReason.NO_RECEIVER_ROOM,
            )
            for gid in owned
        ]
    day_start = local_day_start(now, time_zone)
    h = handover_items.c
    handed_today = tx.execute(
        select(func.count()).where(
            h.tenant_id == ctx.tenant_id,
            h.kind == "group",
            h.from_account_id == leaving.id,
            h.status == TransferStatus.ACCEPTED.value,
            h.requested_at >= day_start,
        )
    ).scalar_one()
    today = groups_to_hand_over_today(owned, handed_today=int(handed_today))
    now_ids, later = owned[:today], owned[today:]
    take(tx, Lock.GROUPS)
    if now_ids:
        tx.execute(
            update(groups)
            .where(g.tenant_id == ctx.tenant_id, g.id.in_(now_ids))
            .values(staff_account_id=target, updated_at=now)
        )
    next_day = local_day_start(day_start + timedelta(hours=36), time_zone)
    done = [
        item_row(
            ctx.tenant_id,
            handover_id,
            "group",
            gid,
            leaving.id,
            now,
            status=TransferStatus.ACCEPTED,
            to=target,
        )
        for gid in now_ids
    ]
    waiting = [
        item_row(
            ctx.tenant_id,
            handover_id,
            "group",
            gid,
            leaving.id,
            now,
            status=TransferStatus.WAITING,
            reason=WaitReason.GROUP_DAILY_LIMIT,
            not_before=next_day,
        )
        for gid in later
    ]
    return done, waiting
