"""The transfers of a handover: their rows, what the platform says of them (accepted,
refused, receiver full), and the handover as it stands. Every transfer asked for or held back
is kept: the history of who looked after whom."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from shequn.community.common import ids_in, view
from shequn.community.staff.rules import (
    TRANSFER_WAIT,
    TransferStatus,
    WaitReason,
    outcome_of,
)
from shequn.community.staff.service import require_account
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
from shequn.ids import new_id
from shequn.locks import Lock, lock_rows

MAX_OUTCOMES = 1_000


def adjust_counts(tx: Connection, tenant_id: str, deltas: Mapping[str, int], now: datetime) -> None:
    """Move accounts' member counts by `deltas` (the caller holds the accounts)."""
    changes = [{"t": tenant_id, "a": a, "n": n} for a, n in sorted(deltas.items()) if n]
    if not changes:
        return
    s = staff_accounts.c
    tx.execute(
        update(staff_accounts)
        .where(s.tenant_id == bindparam("t"), s.id == bindparam("a"))
        .values(member_count=s.member_count + bindparam("n"), updated_at=now),
        changes,
    )


def accept_due(tx: Connection, tenant_id: str, handover_id: str, now: datetime) -> int:
    """Pending transfers whose 24 hours are over without a refusal are done: the member now
    belongs to its receiver."""
    h = handover_items.c
    due = tx.execute(
        select(h.id, h.subject_id, h.from_account_id, h.to_account_id).where(
            h.tenant_id == tenant_id,
            h.handover_id == handover_id,
            h.kind == "member",
            h.status == TransferStatus.PENDING.value,
            h.due_at <= now,
        )
    ).all()
    if due:
        apply_accepted(tx, tenant_id, due, now)
    return len(due)


def apply_accepted(tx: Connection, tenant_id: str, items: Sequence[Any], now: datetime) -> None:
    h = handover_items.c
    tx.execute(
        update(handover_items)
        .where(h.tenant_id == bindparam("t"), h.id == bindparam("i"))
        .values(status=TransferStatus.ACCEPTED.value, decided_at=now),
        [{"t": tenant_id, "i": r.id} for r in items],
    )
    a = staff_assignments.c
    tx.execute(
        update(staff_assignments)
        .where(a.tenant_id == bindparam("t"), a.member_id == bindparam("m"))
        .values(staff_account_id=bindparam("to"), via="handover", assigned_at=now),
        [{"t": tenant_id, "m": r.subject_id, "to": r.to_account_id} for r in items],
    )
    # The receiver was counted when the transfer was asked for; the giver lets go now.
    losses: dict[str, int] = {}
    for r in items:
        losses[r.from_account_id] = losses.get(r.from_account_id, 0) - 1
    adjust_counts(tx, tenant_id, losses, now)
    record_events(
        tx,
        tenant_id=tenant_id,
        actor="system",
        at=now,
        items=[
            Event(
                "MemberTransferred",
                "member",
                r.subject_id,
                {"from_account_id": r.from_account_id, "to_account_id": r.to_account_id},
            )
            for r in items
        ],
    )


def item_row(
    tenant_id: str,
    handover_id: str,
    kind: str,
    subject: str,
    from_id: str,
    now: datetime,
    *,
    status: TransferStatus,
    to: str | None = None,
    call: int | None = None,
    reason: WaitReason | None = None,
    not_before: datetime | None = None,
) -> dict[str, Any]:
    asked = status in (TransferStatus.PENDING, TransferStatus.ACCEPTED)
    return {
        "tenant_id": tenant_id,
        "id": new_id("hoi"),
        "handover_id": handover_id,
        "kind": kind,
        "subject_id": subject,
        "from_account_id": from_id,
        "to_account_id": to,
        "status": status.value,
        "reason": reason.value if reason is not None else None,
        "call_no": call,
        "requested_at": now if asked else None,
        "due_at": now + TRANSFER_WAIT if status is TransferStatus.PENDING else None,
        "decided_at": now if status is TransferStatus.ACCEPTED else None,
        "not_before": not_before,
        "created_at": now,
    }


def record_outcomes(
    ctx: Ctx, *, handover_id: str, outcomes: Sequence[Mapping[str, str]]
) -> dict[str, Any]:
    """What the platform said of pending transfers: `accepted`, `refused` (the member stays
    with the leaving account and is listed), `receiver_full` (asked again of the fallback
    receiver if it has room, else listed)."""
    if not 1 <= len(outcomes) <= MAX_OUTCOMES:
        raise InvalidInput("outcomes_invalid", max=MAX_OUTCOMES)
    said: dict[str, TransferStatus] = {}
    for item in outcomes:
        member_id = item.get("member_id")
        if not isinstance(member_id, str) or not member_id:
            raise InvalidInput("member_id_invalid")
        said[member_id] = outcome_of(str(item.get("outcome")))
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        found = tx.execute(
            select(handovers).where(
                handovers.c.tenant_id == ctx.tenant_id, handovers.c.id == handover_id
            )
        ).first()
        if found is None:
            raise NotFound("handover_not_found", id=handover_id)
        h = handover_items.c
        pending = {
            r.subject_id: r
            for r in tx.execute(
                select(handover_items).where(
                    h.tenant_id == ctx.tenant_id,
                    h.handover_id == handover_id,
                    h.kind == "member",
                    h.status == TransferStatus.PENDING.value,
                    ids_in(tx, h.subject_id, sorted(said)),
                )
            ).all()
        }
        missing = sorted(set(said) - set(pending))
        if missing:
            raise Conflict("transfer_not_pending", member_id=missing[0])
        accounts = sorted(
            {found.from_account_id, *(r.to_account_id for r in pending.values())}
            | ({found.fallback_account_id} if found.fallback_account_id else set())
        )
        lock_rows(tx, Lock.STAFF_ACCOUNTS, staff_accounts, ctx.tenant_id, accounts)
        accepted = [r for m, r in pending.items() if said[m] is TransferStatus.ACCEPTED]
        if accepted:
            apply_accepted(tx, ctx.tenant_id, accepted, now)
        failed = [r for m, r in pending.items() if said[m] is not TransferStatus.ACCEPTED]
        releases: dict[str, int] = {}
        for r in failed:
            releases[r.to_account_id] = releases.get(r.to_account_id, 0) - 1
            tx.execute(
                update(handover_items)
                .where(h.tenant_id == ctx.tenant_id, h.id == r.id)
                .values(status=said[r.subject_id].value, decided_at=now)
            )
        adjust_counts(tx, ctx.tenant_id, releases, now)
        retry_rows: list[dict[str, Any]] = []
        full = [r for r in failed if said[r.subject_id] is TransferStatus.RECEIVER_FULL]
        fallback = found.fallback_account_id
        room = 0
        if fallback is not None:
            receiver = require_account(tx, ctx.tenant_id, fallback)
            room = receiver.friend_cap - receiver.member_count if receiver.status == "active" else 0
        call = found.next_call
        retried = 0
        for r in full:
            if fallback is not None and fallback != r.to_account_id and room > 0:
                retry_rows.append(
                    item_row(
                        ctx.tenant_id,
                        handover_id,
                        "member",
                        r.subject_id,
                        found.from_account_id,
                        now,
                        to=fallback,
                        status=TransferStatus.PENDING,
                        call=call,
                    )
                )
                room -= 1
                retried += 1
            else:
                retry_rows.append(
                    item_row(
                        ctx.tenant_id,
                        handover_id,
                        "member",
                        r.subject_id,
                        found.from_account_id,
                        now,
                        status=TransferStatus.WAITING,
                        reason=WaitReason.NO_RECEIVER_ROOM,
                    )
                )
        for r in failed:
            if said[r.subject_id] is TransferStatus.REFUSED:
                retry_rows.append(
                    item_row(
                        ctx.tenant_id,
                        handover_id,
                        "member",
                        r.subject_id,
                        found.from_account_id,
                        now,
                        status=TransferStatus.WAITING,
                        reason=WaitReason.REFUSED,
                    )
                )
        if retry_rows:
            tx.execute(handover_items.insert(), retry_rows)
        if retried and fallback is not None:
            adjust_counts(tx, ctx.tenant_id, {fallback: retried}, now)
            tx.execute(
                update(handovers)
                .where(handovers.c.tenant_id == ctx.tenant_id, handovers.c.id == handover_id)
                .values(next_call=call + 1, updated_at=now)
            )
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[
                Event(
                    "MemberTransferFailed",
                    "member",
                    r.subject_id,
                    {
                        "handover_id": handover_id,
                        "outcome": said[r.subject_id].value,
                        "to_account_id": r.to_account_id,
                    },
                )
                for r in failed
            ],
        )
        summary = summary_of(tx, ctx.tenant_id, handover_id)
    summary["accepted_now"] = len(accepted)
    summary["retried_now"] = retried
    return summary


def summary_of(
    tx: Connection, tenant_id: str, handover_id: str, *, finish: bool = True
) -> dict[str, Any]:
    """The handover as it stands: counts by status, and the members and groups waiting, with
    why and from when. Done once nothing is pending or waiting and the account holds no
    member any more (the account is then marked left)."""
    row = tx.execute(
        select(handovers).where(handovers.c.tenant_id == tenant_id, handovers.c.id == handover_id)
    ).one()
    h = handover_items.c
    counts = {
        (k, s): int(n)
        for k, s, n in tx.execute(
            select(h.kind, h.status, func.count())
            .where(h.tenant_id == tenant_id, h.handover_id == handover_id)
            .group_by(h.kind, h.status)
        ).all()
    }
    waiting = tx.execute(
        select(h.kind, h.subject_id, h.reason, h.not_before)
        .where(
            h.tenant_id == tenant_id,
            h.handover_id == handover_id,
            h.status == TransferStatus.WAITING.value,
        )
        .order_by(h.kind, h.subject_id)
    ).all()
    account = require_account(tx, tenant_id, row.from_account_id)
    still_owned = tx.execute(
        select(func.count()).where(
            groups.c.tenant_id == tenant_id, groups.c.staff_account_id == account.id
        )
    ).scalar_one()
    pending = counts.get(("member", TransferStatus.PENDING.value), 0)
    status = row.status
    if (
        status == "open"
        and not waiting
        and not pending
        and account.member_count == 0
        and not still_owned
    ):
        status = "done"
    if status == "done" and row.status == "open" and finish:
        tx.execute(
            update(handovers)
            .where(handovers.c.tenant_id == tenant_id, handovers.c.id == handover_id)
            .values(status="done")
        )
        tx.execute(
            update(staff_accounts)
            .where(staff_accounts.c.tenant_id == tenant_id, staff_accounts.c.id == account.id)
            .values(status="left")
        )
    shown = view(row, drop=("next_call",))
    shown["status"] = status
    shown["members"] = {s.value: counts.get(("member", s.value), 0) for s in TransferStatus}
    shown["groups"] = {s.value: counts.get(("group", s.value), 0) for s in TransferStatus}
    shown["waiting"] = [
        {"kind": w.kind, "subject_id": w.subject_id, "reason": w.reason, "not_before": w.not_before}
        for w in waiting
    ]
    shown["remaining_members"] = account.member_count
    return shown


def get_handover(ctx: Ctx, *, handover_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        found = tx.execute(
            select(handovers.c.id).where(
                handovers.c.tenant_id == ctx.tenant_id, handovers.c.id == handover_id
            )
        ).first()
        if found is None:
            raise NotFound("handover_not_found", id=handover_id)
        return summary_of(tx, ctx.tenant_id, handover_id, finish=False)


def handover_items_of(ctx: Ctx, *, handover_id: str) -> list[dict[str, Any]]:
    """Every transfer of the handover, asked for or held back (the history)."""
    h = handover_items.c
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(handover_items)
            .where(h.tenant_id == ctx.tenant_id, h.handover_id == handover_id)
            .order_by(h.created_at, h.id)
        ).all()
        if (
            not rows
            and tx.execute(
                select(handovers.c.id).where(
                    handovers.c.tenant_id == ctx.tenant_id, handovers.c.id == handover_id
                )
            ).first()
            is None
        ):
            raise NotFound("handover_not_found", id=handover_id)
    return [view(r, drop=("handover_id",)) for r in rows]
