"""Identity signals, the fraud checks over them, and holds: a suspect commission line is
withheld (its money back in the brand's clearing account) and a suspect reward is not granted
until an operator releases or cancels it, so that nothing is lost or paid twice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, func, insert, or_, select, update

from shequn.context import Ctx
from shequn.distribution.commissions import OWN_SALE_KIND, reissue_line, withhold_lines
from shequn.distribution.tables import commission_lines
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.growth.holds.rules import (
    HoldStatus,
    Identity,
    Reason,
    clean_signal_value,
    fingerprint,
    hold_reasons,
)
from shequn.growth.holds.tables import holds, identity_signals
from shequn.growth.settings.rules import GrowthSettings
from shequn.ids import checked_cursor, new_id
from shequn.locks import Lock, take
from shequn.members.repo import require_member
from shequn.members.tables import members
from shequn.orders.tables import order_lines, orders
from shequn.tenancy.rules import TenantSettings

SIGNAL_KINDS = ("registration", "order", "login")
_PRINT_COLUMNS = {
    "phone": identity_signals.c.phone_print,
    "device": identity_signals.c.device_print,
    "address": identity_signals.c.address_print,
    "payment": identity_signals.c.payment_print,
}


def record_signal(
    ctx: Ctx,
    *,
    member_id: str,
    kind: str,
    device_id: str | None = None,
    address: str | None = None,
    payment_account: str | None = None,
) -> dict[str, Any]:
    """What a shop saw of a member (at a registration, an order, a login), kept as
    fingerprints; the member's phone is fingerprinted too, so that it is recognised after the
    member is deleted."""
    if kind not in SIGNAL_KINDS:
        raise InvalidInput("signal_kind_invalid", kind=kind)
    values = {
        "device": clean_signal_value("device", device_id),
        "address": clean_signal_value("address", address),
        "payment": clean_signal_value("payment", payment_account),
    }
    now = ctx.clock.now()
    signal_id = new_id("sig")
    with ctx.db.transaction() as tx:
        member = require_member(tx, ctx.tenant_id, member_id)
        if member.anonymised_at is not None:
            raise Conflict("member_anonymised", id=member_id)
        prints = {
            f"{k}_print": fingerprint(ctx.tenant_id, k, v) if v is not None else None
            for k, v in values.items()
        }
        phone = fingerprint(ctx.tenant_id, "phone", member.phone) if member.phone else None
        tx.execute(
            insert(identity_signals).values(
                tenant_id=ctx.tenant_id,
                id=signal_id,
                member_id=member_id,
                kind=kind,
                phone_print=phone,
                seen_at=now,
                **prints,
            )
        )
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="IdentitySignalRecorded",
            subject_type="member",
            subject_id=member_id,
            payload={"kind": kind, "fields": sorted(k for k, v in values.items() if v is not None)},
        )
    return {"id": signal_id, "member_id": member_id, "kind": kind, "seen_at": now}


def identities(tx: Connection, tenant_id: str, member_ids: Sequence[str]) -> dict[str, Identity]:
    """The members' fingerprints from their signals and their phone numbers now."""
    wanted = sorted(set(member_ids))
    prints: dict[str, dict[str, set[str]]] = {m: {k: set() for k in _PRINT_COLUMNS} for m in wanted}
    rows = tx.execute(
        select(identity_signals.c.member_id, *_PRINT_COLUMNS.values()).where(
            identity_signals.c.tenant_id == tenant_id, identity_signals.c.member_id.in_(wanted)
        )
    ).all()
    for r in rows:
        for kind, col in _PRINT_COLUMNS.items():
            value = r._mapping[col.name]
            if value:
                prints[r.member_id][kind].add(value)
    for member_id, phone in tx.execute(
        select(members.c.id, members.c.phone).where(
            members.c.tenant_id == tenant_id, members.c.id.in_(wanted)
        )
    ).all():
        if phone:
            prints[member_id]["phone"].add(fingerprint(tenant_id, "phone", phone))
    return {m: Identity(m, {k: frozenset(v) for k, v in p.items()}) for m, p in prints.items()}


def velocity(tx: Connection, tenant_id: str, who: Identity, at: datetime) -> int:
    """Registrations and orders seen from the member's devices or addresses in the hour up to
    `at` (the most of any one of them)."""
    most = 0
    since = at - timedelta(hours=1)
    for kind in ("device", "address"):
        for value in sorted(who.of(kind)):
            count = tx.execute(
                select(func.count()).where(
                    identity_signals.c.tenant_id == tenant_id,
                    _PRINT_COLUMNS[kind] == value,
                    identity_signals.c.kind.in_(("registration", "order")),
                    identity_signals.c.seen_at > since,
                    identity_signals.c.seen_at <= at,
                )
            ).scalar_one()
            most = max(most, int(count))
    return most


def came_back(tx: Connection, tenant_id: str, who: Identity) -> bool:
    """Whether the member's phone or device was seen on a member since deleted."""
    conditions = [
        _PRINT_COLUMNS[kind].in_(sorted(who.of(kind)))
        for kind in ("phone", "device")
        if who.of(kind)
    ]
    if not conditions:
        return False
    found = tx.execute(
        select(identity_signals.c.member_id)
        .join(
            members,
            (members.c.tenant_id == identity_signals.c.tenant_id)
            & (members.c.id == identity_signals.c.member_id),
        )
        .where(
            identity_signals.c.tenant_id == tenant_id,
            identity_signals.c.member_id != who.member_id,
            members.c.anonymised_at.is_not(None),
            or_(*conditions),
        )
        .limit(1)
    ).first()
    return found is not None


def suspicions(
    tx: Connection,
    *,
    tenant_id: str,
    growth: GrowthSettings,
    buyer_id: str,
    beneficiaries: Mapping[str, int],
    at: datetime,
    new_customer_reward: bool = False,
) -> dict[str, list[Reason]]:
    """Why paying each beneficiary (id → level) for the buyer's order is suspect."""
    known = identities(tx, tenant_id, [buyer_id, *beneficiaries])
    buyer = known[buyer_id]
    fast = velocity(tx, tenant_id, buyer, at)
    back = came_back(tx, tenant_id, buyer) if new_customer_reward else False
    return {
        member_id: hold_reasons(
            buyer,
            known[member_id],
            level=level,
            velocity_count=fast,
            velocity_limit=growth.velocity_limit_per_hour,
            came_back=back,
            new_customer_reward=new_customer_reward,
        )
        for member_id, level in beneficiaries.items()
    }


def open_hold(
    tx: Connection,
    *,
    tenant_id: str,
    kind: str,
    subject_id: str,
    member_id: str,
    buyer_id: str,
    order_id: str,
    amount_fen: int,
    points: int,
    reasons: Sequence[Reason],
    actor: str,
    at: datetime,
) -> str:
    take(tx, Lock.HOLDS)
    hold_id = new_id("hld")
    tx.execute(
        insert(holds).values(
            tenant_id=tenant_id,
            id=hold_id,
            kind=kind,
            subject_id=subject_id,
            member_id=member_id,
            buyer_id=buyer_id,
            order_id=order_id,
            amount_fen=amount_fen,
            points=points,
            reasons=[r.value for r in reasons],
            status=HoldStatus.HELD.value,
            released_fen=0,
            created_at=at,
        )
    )
    record_event(
        tx,
        tenant_id=tenant_id,
        actor=actor,
        at=at,
        type="HoldOpened",
        subject_type="hold",
        subject_id=hold_id,
        payload={
            "kind": kind,
            "member_id": member_id,
            "order_id": order_id,
            "reasons": [r.value for r in reasons],
        },
    )
    return hold_id


def lock_order(tx: Connection, tenant_id: str, order_id: str) -> Row[Any]:
    """The order, locked (a hold and its decision serialise with refunds and settlement)."""
    take(tx, Lock.ORDERS)
    row = tx.execute(
        select(orders)
        .where(orders.c.tenant_id == tenant_id, orders.c.id == order_id)
        .with_for_update()
    ).first()
    if row is None:
        raise NotFound("order_not_found", id=order_id)
    return row


def hold_order_commissions(
    tx: Connection,
    *,
    settings: TenantSettings,
    growth: GrowthSettings,
    order_id: str,
    actor: str,
    at: datetime,
) -> int:
    """Withhold every commission line of a paid order whose beneficiary looks like the buyer
    itself or linked to it (or whose buyer registers or orders too fast); returns how many.
    A line held once is not held again."""
    tenant_id = settings.tenant_id
    order = lock_order(tx, tenant_id, order_id)
    cl = commission_lines
    lines = tx.execute(
        select(
            cl.c.id,
            cl.c.beneficiary_id,
            cl.c.level,
            cl.c.amount_fen,
            cl.c.cancelled_fen,
            cl.c.reversed_fen,
        )
        .where(
            cl.c.tenant_id == tenant_id,
            cl.c.order_id == order_id,
            cl.c.kind != OWN_SALE_KIND,
            cl.c.status.in_(("pending", "available", "withdrawn")),
        )
        .order_by(cl.c.id)
    ).all()
    if not lines:
        return 0
    already = set(
        tx.execute(
            select(holds.c.subject_id).where(
                holds.c.tenant_id == tenant_id,
                holds.c.kind == "commission",
                holds.c.subject_id.in_([line.id for line in lines]),
            )
        ).scalars()
    )
    levels = {line.beneficiary_id: line.level for line in lines}
    found = suspicions(
        tx, tenant_id=tenant_id, growth=growth, buyer_id=order.buyer_id, beneficiaries=levels, at=at
    )
    suspect = [line for line in lines if found[line.beneficiary_id] and line.id not in already]
    for line in suspect:
        open_hold(
            tx,
            tenant_id=tenant_id,
            kind="commission",
            subject_id=line.id,
            member_id=line.beneficiary_id,
            buyer_id=order.buyer_id,
            order_id=order_id,
            amount_fen=line.amount_fen - line.cancelled_fen - line.reversed_fen,
            points=0,
            reasons=found[line.beneficiary_id],
            actor=actor,
            at=at,
        )
    withhold_lines(tx, settings=settings, line_ids=[line.id for line in suspect], at=at)
    return len(suspect)


def hold_view(row: Row[Any]) -> dict[str, Any]:
    data = {k: v for k, v in row._mapping.items() if k != "tenant_id"}
    data["reasons"] = list(row.reasons)
    return data


def list_holds(
    ctx: Ctx,
    *,
    status: str | None = None,
    member_id: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Holds oldest first; pass `next_after` back as `after`."""
    if status is not None and status not in {s.value for s in HoldStatus}:
        raise InvalidInput("hold_status_invalid", status=status)
    if not 1 <= limit <= 500:
        raise InvalidInput("limit_out_of_range", low=1, high=500)
    after = checked_cursor(after, "hld")
    with ctx.db.read() as tx:
        query = select(holds).where(holds.c.tenant_id == ctx.tenant_id)
        if status is not None:
            query = query.where(holds.c.status == status)
        if member_id is not None:
            query = query.where(holds.c.member_id == member_id)
        if after is not None:
            query = query.where(holds.c.id > after)
        rows = tx.execute(query.order_by(holds.c.id).limit(limit + 1)).all()
    page = rows[:limit]
    return {
        "items": [hold_view(r) for r in page],
        "next_after": page[-1].id if len(rows) > limit else None,
    }


def hold_row(tx: Connection, tenant_id: str, hold_id: str) -> Row[Any]:
    row = tx.execute(
        select(holds).where(holds.c.tenant_id == tenant_id, holds.c.id == hold_id)
    ).first()
    if row is None:
        raise NotFound("hold_not_found", id=hold_id)
    return row


def lock_hold(tx: Connection, tenant_id: str, hold_id: str) -> Row[Any]:
    take(tx, Lock.HOLDS)
    row = tx.execute(
        select(holds).where(holds.c.tenant_id == tenant_id, holds.c.id == hold_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound("hold_not_found", id=hold_id)
    if row.status != HoldStatus.HELD.value:
        raise Conflict("hold_already_decided", id=hold_id, status=row.status)
    return row


def release_commission(
    tx: Connection, *, settings: TenantSettings, hold: Row[Any], order: Row[Any], at: datetime
) -> int:
    """Pay a held commission line again, on what is left of its order line now."""
    line_id = tx.execute(
        select(commission_lines.c.order_line_id).where(
            commission_lines.c.tenant_id == settings.tenant_id,
            commission_lines.c.id == hold.subject_id,
        )
    ).scalar_one()
    line = tx.execute(
        select(order_lines.c.line_total_fen, order_lines.c.refunded_fen).where(
            order_lines.c.tenant_id == settings.tenant_id, order_lines.c.id == line_id
        )
    ).one()
    return reissue_line(
        tx,
        settings=settings,
        line_id=hold.subject_id,
        remaining_base_fen=line.line_total_fen - line.refunded_fen,
        order_closed=order.closed_at is not None,
        at=at,
    )


def decide(
    tx: Connection,
    *,
    tenant_id: str,
    hold_id: str,
    status: HoldStatus,
    reason: str,
    released_fen: int,
    actor: str,
    at: datetime,
) -> dict[str, Any]:
    tx.execute(
        update(holds)
        .where(holds.c.tenant_id == tenant_id, holds.c.id == hold_id)
        .values(
            status=status.value,
            decided_by=actor,
            decision_reason=reason,
            released_fen=released_fen,
            decided_at=at,
        )
    )
    record_event(
        tx,
        tenant_id=tenant_id,
        actor=actor,
        at=at,
        type="HoldReleased" if status is HoldStatus.RELEASED else "HoldCancelled",
        subject_type="hold",
        subject_id=hold_id,
        payload={"reason": reason, "released_fen": released_fen},
    )
    return hold_view(hold_row(tx, tenant_id, hold_id))
