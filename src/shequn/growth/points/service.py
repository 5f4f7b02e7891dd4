"""Points: earning lots, spending them oldest first (an order's discount, a redemption),
giving back what a cancelled or refunded order spent, taking back what a reversed reward or
refunded purchase earned, expiring lots set-based, and a member's balance, lots and history.

Every change of a member's points moves its lots and its points account (ledger) together, so
the account's balance is always the sum of what is left of its lots. A use case locks the
member's lots (`Lock.POINT_LOTS`) before its account (`Lock.ACCOUNTS`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shequn.context import Ctx
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.growth.points.rules import (
    ONE_TIMES_BP,
    Lot,
    allocate_spend,
    earned_points,
    restore_target,
    take_back,
)
from shequn.growth.points.tables import point_lots, point_spends, redemption_items, redemptions
from shequn.growth.settings.rules import GrowthSettings
from shequn.growth.settings.service import load_growth_settings
from shequn.ids import new_id
from shequn.ledger.rules import POINTS_CURRENCY, Posting, Purpose, brand_account, member_account
from shequn.ledger.service import JournalEntry, debit_if_covered, post_entries
from shequn.ledger.tables import journal_transactions, postings
from shequn.locks import Lock, lock_rows, take
from shequn.members.repo import require_member
from shequn.orders.views import clean_key
from shequn.tiers.repo import load_tiers

BRAND_POINTS = brand_account(Purpose.POINTS)
EXPIRY_BATCH = 5_000
HISTORY_LIMIT = 100


def tier_points_multiplier_bp(tx: Connection, tenant_id: str, tier_id: str | None) -> int:
    """The points multiplier of a tier, in bp (10 000 = 1×; no tier, 1×)."""
    if tier_id is None:
        return ONE_TIMES_BP
    found = next((t for t in load_tiers(tx, tenant_id) if t.id == tier_id), None)
    return ONE_TIMES_BP if found is None else found.points_multiplier_bp


def _entry(kind: str, ref_type: str, ref_id: str, member_id: str, points: int) -> JournalEntry:
    """Points into (positive) or out of (negative) the member's points account."""
    account = member_account(member_id, Purpose.POINTS)
    return JournalEntry(
        kind,
        ref_type,
        ref_id,
        [
            Posting(account, points, POINTS_CURRENCY),
            Posting(BRAND_POINTS, -points, POINTS_CURRENCY),
        ],
    )


@dataclass(frozen=True)
class EarnedLot:
    member_id: str
    source: str  # purchase | rule | sharing | manual
    ref: str
    points: int


def earn_lots(
    tx: Connection,
    *,
    tenant_id: str,
    lots: Sequence[EarnedLot],
    at: datetime,
    expiry_days: int,
) -> dict[str, int]:
    """A lot for each of `lots`, once per (source, ref, member): one already earned earns
    nothing again. A few statements however many lots. Returns the points earned by ref."""
    wanted = [lot for lot in lots if lot.points > 0]
    if not wanted:
        return {}
    done: set[tuple[str, str, str]] = {
        (r.source, r.ref, r.member_id)
        for r in tx.execute(
            select(point_lots.c.source, point_lots.c.ref, point_lots.c.member_id).where(
                point_lots.c.tenant_id == tenant_id,
                point_lots.c.ref.in_(sorted({lot.ref for lot in wanted})),
            )
        ).all()
    }
    rows: list[dict[str, Any]] = []
    for lot in wanted:
        if (lot.source, lot.ref, lot.member_id) in done:
            continue
        done.add((lot.source, lot.ref, lot.member_id))
        rows.append(
            {
                "tenant_id": tenant_id,
                "id": new_id("lot"),
                "member_id": lot.member_id,
                "source": lot.source,
                "ref": lot.ref,
                "amount": lot.points,
                "remaining": lot.points,
                "expired": 0,
                "earned_at": at,
                "expires_at": at + timedelta(days=expiry_days),
            }
        )
    if not rows:
        return {}
    take(tx, Lock.POINT_LOTS)
    tx.execute(insert(point_lots), rows)
    take(tx, Lock.ACCOUNTS)
    post_entries(
        tx,
        tenant_id=tenant_id,
        at=at,
        entries=[
            _entry("points_earned", "point_lot", r["id"], r["member_id"], r["amount"]) for r in rows
        ],
    )
    return {r["ref"]: r["amount"] for r in rows}


def earn(
    tx: Connection,
    *,
    tenant_id: str,
    member_id: str,
    source: str,
    ref: str,
    points: int,
    at: datetime,
    expiry_days: int,
) -> int:
    """One lot of `points` for the member, once per (source, ref); returns the points earned
    (0 the second time)."""
    earned = earn_lots(
        tx,
        tenant_id=tenant_id,
        lots=[EarnedLot(member_id, source, ref, points)],
        at=at,
        expiry_days=expiry_days,
    )
    return earned.get(ref, 0)


def earn_for_purchases(
    tx: Connection,
    *,
    tenant_id: str,
    settings: GrowthSettings,
    orders: Sequence[Mapping[str, Any]],
    at: datetime,
) -> int:
    """Points for closed orders, one lot per order (orders already counted earn nothing
    again): what was paid and not refunded, times the tenant's rate and the buyer's tier
    multiplier. Returns the points earned."""
    if settings.points_earn_bp == 0 or not orders:
        return 0
    multipliers: dict[str | None, int] = {}
    lots = []
    for order in orders:
        tier = order["buyer_tier_id"]
        if tier not in multipliers:
            multipliers[tier] = tier_points_multiplier_bp(tx, tenant_id, tier)
        points = earned_points(
            order["paid_fen"] - order["refunded_fen"],
            earn_bp=settings.points_earn_bp,
            multiplier_bp=multipliers[tier],
        )
        lots.append(EarnedLot(order["buyer_id"], "purchase", order["id"], points))
    earned = earn_lots(
        tx, tenant_id=tenant_id, lots=lots, at=at, expiry_days=settings.points_expiry_days
    )
    return sum(earned.values())


def _lots(tx: Connection, tenant_id: str, member_id: str) -> list[Lot]:
    """The member's lots with points left, locked (in id order)."""
    return _lots_of(tx, tenant_id, [member_id]).get(member_id, [])


def _lots_of(tx: Connection, tenant_id: str, member_ids: Sequence[str]) -> dict[str, list[Lot]]:
    """The members' lots with points left, locked (in id order)."""
    take(tx, Lock.POINT_LOTS)
    rows = tx.execute(
        select(
            point_lots.c.member_id,
            point_lots.c.id,
            point_lots.c.remaining,
            point_lots.c.earned_at,
            point_lots.c.expires_at,
        )
        .where(
            point_lots.c.tenant_id == tenant_id,
            point_lots.c.member_id.in_(sorted(set(member_ids))),
            point_lots.c.remaining > 0,
        )
        .order_by(point_lots.c.id)
        .with_for_update()
    ).all()
    found: dict[str, list[Lot]] = defaultdict(list)
    for r in rows:
        found[r.member_id].append(Lot(r.id, r.remaining, r.earned_at, r.expires_at))
    return found


_take_from_lot = (
    update(point_lots)
    .where(point_lots.c.tenant_id == bindparam("t_id"), point_lots.c.id == bindparam("l_id"))
    .values(remaining=point_lots.c.remaining - bindparam("part"))
)
_give_to_lot = (
    update(point_lots)
    .where(point_lots.c.tenant_id == bindparam("t_id"), point_lots.c.id == bindparam("l_id"))
    .values(remaining=point_lots.c.remaining + bindparam("part"))
)


def _draw(
    tx: Connection,
    *,
    tenant_id: str,
    member_id: str,
    taken: Sequence[tuple[str, int]],
    purpose: str,
    ref: str,
    kind: str,
    at: datetime,
) -> int:
    """Take points from the (locked) lots and the account together; returns the points."""
    total = sum(part for _, part in taken)
    if total == 0:
        return 0
    tx.execute(
        _take_from_lot,
        [{"t_id": tenant_id, "l_id": lot_id, "part": part} for lot_id, part in taken],
    )
    spend_ids = []
    rows = []
    for lot_id, part in taken:
        spend_id = new_id("psp")
        spend_ids.append(spend_id)
        rows.append(
            {
                "tenant_id": tenant_id,
                "id": spend_id,
                "member_id": member_id,
                "purpose": purpose,
                "ref": ref,
                "lot_id": lot_id,
                "points": part,
                "restored": 0,
                "spent_at": at,
            }
        )
    tx.execute(insert(point_spends), rows)
    account = member_account(member_id, Purpose.POINTS)
    if not debit_if_covered(tx, tenant_id=tenant_id, account_id=account, amount=total):
        raise Conflict("insufficient_points", points=total, balance=0)
    entry = _entry(kind, purpose, ref, member_id, -total)
    post_entries(
        tx,
        tenant_id=tenant_id,
        at=at,
        entries=[
            JournalEntry(
                entry.kind, entry.ref_type, entry.ref_id, entry.items, frozenset({account})
            )
        ],
    )
    return total


def spend(
    tx: Connection,
    *,
    tenant_id: str,
    member_id: str,
    points: int,
    purpose: str,
    ref: str,
    at: datetime,
) -> int:
    """Spend `points` of the member's, oldest lot first (refused beyond its spendable
    balance); the caller holds no lock after `Lock.POINT_LOTS`."""
    lots = _lots(tx, tenant_id, member_id)
    taken = allocate_spend(lots, points, at)
    take(tx, Lock.ACCOUNTS)
    return _draw(
        tx,
        tenant_id=tenant_id,
        member_id=member_id,
        taken=taken,
        purpose=purpose,
        ref=ref,
        kind="points_spent",
        at=at,
    )


def restore_spent(
    tx: Connection,
    *,
    tenant_id: str,
    purpose: str,
    ref: str,
    refunded_fen: int,
    paid_fen: int,
    cancelled: bool,
    at: datetime,
) -> int:
    """Give back what a spend took, to the lots it came from (a lot that expired since expires
    again at the next run), as far as the order was cancelled or refunded; what was given back
    before is not given again. Returns the points given back now."""
    rows = tx.execute(
        select(point_spends)
        .where(
            point_spends.c.tenant_id == tenant_id,
            point_spends.c.purpose == purpose,
            point_spends.c.ref == ref,
        )
        .order_by(point_spends.c.id)
    ).all()
    if not rows:
        return 0
    spent = sum(r.points for r in rows)
    done = sum(r.restored for r in rows)
    due = restore_target(spent, refunded_fen=refunded_fen, paid_fen=paid_fen, cancelled=cancelled)
    left = due - done
    if left <= 0:
        return 0
    member_id = rows[0].member_id
    lock_rows(tx, Lock.POINT_LOTS, point_lots, tenant_id, sorted({r.lot_id for r in rows}))
    gives: list[tuple[Row[Any], int]] = []
    for r in rows:
        part = min(r.points - r.restored, left)
        if part > 0:
            gives.append((r, part))
            left -= part
    tx.execute(
        _give_to_lot, [{"t_id": tenant_id, "l_id": r.lot_id, "part": part} for r, part in gives]
    )
    tx.execute(
        update(point_spends)
        .where(
            point_spends.c.tenant_id == bindparam("t_id"), point_spends.c.id == bindparam("s_id")
        )
        .values(restored=point_spends.c.restored + bindparam("part")),
        [{"t_id": tenant_id, "s_id": r.id, "part": part} for r, part in gives],
    )
    total = sum(part for _, part in gives)
    take(tx, Lock.ACCOUNTS)
    post_entries(
        tx,
        tenant_id=tenant_id,
        at=at,
        entries=[_entry("points_restored", purpose, ref, member_id, total)],
    )
    return total


@dataclass(frozen=True)
class TakeBack:
    member_id: str
    source: str
    ref: str
    points: int


def take_back_earned(
    tx: Connection,
    *,
    tenant_id: str,
    items: Sequence[TakeBack],
    reason_ref: str,
    at: datetime,
) -> dict[str, int]:
    """Take back up to each item's points, which a lot of (source, ref) earned: from that lot
    first, then from the member's other lots, never below zero (points already spent elsewhere
    stay spent). Returns the points taken by ref."""
    wanted = [i for i in items if i.points > 0]
    if not wanted:
        return {}
    firsts = {
        (r.source, r.ref, r.member_id): r.id
        for r in tx.execute(
            select(
                point_lots.c.id, point_lots.c.source, point_lots.c.ref, point_lots.c.member_id
            ).where(
                point_lots.c.tenant_id == tenant_id,
                point_lots.c.ref.in_(sorted({i.ref for i in wanted})),
            )
        ).all()
    }
    lots = _lots_of(tx, tenant_id, [i.member_id for i in wanted])
    take(tx, Lock.ACCOUNTS)
    taken: dict[str, int] = {}
    for item in wanted:
        held = lots.get(item.member_id, [])
        parts = take_back(
            held, item.points, first=firsts.get((item.source, item.ref, item.member_id))
        )
        left = dict(parts)
        lots[item.member_id] = [
            Lot(lot.id, lot.remaining - left.get(lot.id, 0), lot.earned_at, lot.expires_at)
            for lot in held
        ]
        taken[item.ref] = _draw(
            tx,
            tenant_id=tenant_id,
            member_id=item.member_id,
            taken=parts,
            purpose="reversal",
            ref=reason_ref,
            kind="points_reversed",
            at=at,
        )
    return taken


def expire_points(ctx: Ctx) -> dict[str, int]:
    """Expire every lot past its date, in batches of a few thousand lots, each batch a few
    statements: the lots emptied, one journal transaction, the accounts moved."""
    lots_expired = points_expired = 0
    while True:
        now = ctx.clock.now()
        with ctx.db.transaction() as tx:
            take(tx, Lock.POINT_LOTS)
            due = tx.execute(
                select(point_lots.c.id, point_lots.c.member_id, point_lots.c.remaining)
                .where(
                    point_lots.c.tenant_id == ctx.tenant_id,
                    point_lots.c.expires_at <= now,
                    point_lots.c.remaining > 0,
                )
                .order_by(point_lots.c.id)
                .limit(EXPIRY_BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            if not due:
                break
            ids = [r.id for r in due]
            tx.execute(
                update(point_lots)
                .where(point_lots.c.tenant_id == ctx.tenant_id, point_lots.c.id.in_(ids))
                .values(expired=point_lots.c.expired + point_lots.c.remaining, remaining=0)
            )
            per_member: dict[str, int] = defaultdict(int)
            for r in due:
                per_member[r.member_id] += r.remaining
            total = sum(per_member.values())
            take(tx, Lock.ACCOUNTS)
            post_entries(
                tx,
                tenant_id=ctx.tenant_id,
                at=now,
                entries=[
                    JournalEntry(
                        "points_expired",
                        "expiry",
                        new_id("pex"),
                        [
                            *(
                                Posting(member_account(m, Purpose.POINTS), -p, POINTS_CURRENCY)
                                for m, p in sorted(per_member.items())
                            ),
                            Posting(BRAND_POINTS, total, POINTS_CURRENCY),
                        ],
                    )
                ],
            )
            record_event(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                type="PointsExpired",
                subject_type="tenant",
                subject_id=ctx.tenant_id,
                payload={"lots": len(due), "points": total, "members": len(per_member)},
            )
            lots_expired += len(due)
            points_expired += total
        if len(due) < EXPIRY_BATCH:
            break
    return {"lots_expired": lots_expired, "points_expired": points_expired}


def _lot_view(row: Row[Any], now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "source": row.source,
        "ref": row.ref,
        "amount": row.amount,
        "remaining": row.remaining,
        "expired": row.expired,
        "earned_at": row.earned_at,
        "expires_at": row.expires_at,
        "spendable": row.remaining > 0 and row.expires_at > now,
    }


def member_points(ctx: Ctx, *, member_id: str) -> dict[str, Any]:
    """The member's points: the spendable balance, the lots (newest first) and the history
    of its points account (newest first), apart from its tier."""
    now = ctx.clock.now()
    account = member_account(member_id, Purpose.POINTS)
    with ctx.db.read() as tx:
        member = require_member(tx, ctx.tenant_id, member_id)
        lots = tx.execute(
            select(point_lots)
            .where(point_lots.c.tenant_id == ctx.tenant_id, point_lots.c.member_id == member_id)
            .order_by(point_lots.c.earned_at.desc(), point_lots.c.id.desc())
        ).all()
        history = tx.execute(
            select(
                journal_transactions.c.kind,
                journal_transactions.c.ref_type,
                journal_transactions.c.ref_id,
                postings.c.amount,
                postings.c.occurred_at,
            )
            .select_from(
                postings.join(
                    journal_transactions,
                    (journal_transactions.c.tenant_id == postings.c.tenant_id)
                    & (journal_transactions.c.id == postings.c.transaction_id),
                )
            )
            .where(postings.c.tenant_id == ctx.tenant_id, postings.c.account_id == account)
            .order_by(postings.c.occurred_at.desc(), postings.c.id.desc())
            .limit(HISTORY_LIMIT)
        ).all()
    views = [_lot_view(r, now) for r in lots]
    return {
        "member_id": member_id,
        "tier_id": member.tier_id,
        "balance": sum(v["remaining"] for v in views if v["spendable"]),
        "awaiting_expiry": sum(v["remaining"] for v in views if not v["spendable"]),
        "lots": views,
        "history": [
            {
                "kind": h.kind,
                "ref_type": h.ref_type,
                "ref_id": h.ref_id,
                "points": h.amount,
                "at": h.occurred_at,
            }
            for h in history
        ],
    }


def award_points(
    ctx: Ctx, *, member_id: str, rule: str, ref: str, points: int | None = None
) -> dict[str, Any]:
    """Points for a ritual, an event or anything the tenant's rules name (`rule`), once per
    (rule, ref); with rule `manual` an operator names the points."""
    clean_ref = (ref or "").strip()
    if not 1 <= len(clean_ref) <= 60:
        raise InvalidInput("points_ref_invalid")
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        settings = load_growth_settings(tx, ctx.tenant_id)
        if rule == "manual":
            if points is None or not 1 <= points <= 10_000_000:
                raise InvalidInput("points_invalid")
            amount = points
        else:
            if rule not in settings.points_rules:
                raise NotFound("points_rule_not_found", rule=rule[:40])
            if points is not None:
                raise InvalidInput("points_set_by_rule", rule=rule)
            amount = settings.points_rules[rule]
        require_member(tx, ctx.tenant_id, member_id)
        earned = earn(
            tx,
            tenant_id=ctx.tenant_id,
            member_id=member_id,
            source="rule" if rule != "manual" else "manual",
            ref=f"{rule}:{clean_ref}",
            points=amount,
            at=now,
            expiry_days=settings.points_expiry_days,
        )
        if earned:
            record_event(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                type="PointsAwarded",
                subject_type="member",
                subject_id=member_id,
                payload={"rule": rule, "ref": clean_ref, "points": earned},
            )
    return {
        "member_id": member_id,
        "rule": rule,
        "ref": clean_ref,
        "points": earned,
        "replayed": earned == 0,
    }


def create_redemption_item(
    ctx: Ctx, *, name: str, points: int, stock: int | None
) -> dict[str, Any]:
    clean = " ".join(name.split())
    if not 1 <= len(clean) <= 60:
        raise InvalidInput("redemption_item_name_invalid")
    if not 1 <= points <= 10_000_000:
        raise InvalidInput("points_invalid")
    if stock is not None and not 0 <= stock <= 10_000_000:
        raise InvalidInput("redemption_stock_invalid")
    item_id = new_id("rit")
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        tx.execute(
            insert(redemption_items).values(
                tenant_id=ctx.tenant_id,
                id=item_id,
                name=clean,
                points=points,
                stock=stock,
                active=True,
                created_at=now,
            )
        )
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="RedemptionItemCreated",
            subject_type="tenant",
            subject_id=ctx.tenant_id,
            payload={"item_id": item_id, "points": points},
        )
        return _item_view(_item(tx, ctx.tenant_id, item_id))


def _item(tx: Connection, tenant_id: str, item_id: str) -> Row[Any]:
    row = tx.execute(
        select(redemption_items).where(
            redemption_items.c.tenant_id == tenant_id, redemption_items.c.id == item_id
        )
    ).first()
    if row is None:
        raise NotFound("redemption_item_not_found", id=item_id)
    return row


def _item_view(row: Row[Any]) -> dict[str, Any]:
    return {k: v for k, v in row._mapping.items() if k != "tenant_id"}


def list_redemption_items(ctx: Ctx) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(redemption_items)
            .where(redemption_items.c.tenant_id == ctx.tenant_id)
            .order_by(redemption_items.c.id)
        ).all()
    return [_item_view(r) for r in rows]


def redeem(
    ctx: Ctx, *, member_id: str, item_id: str, quantity: int, idempotency_key: str | None = None
) -> tuple[dict[str, Any], bool]:
    """Spend points on the redemption list: the item's stock taken by a guarded update, the
    points oldest lot first. Returns (redemption, replayed)."""
    if not 1 <= quantity <= 1_000:
        raise InvalidInput("quantity_invalid", sku=item_id, max=1_000)
    key = clean_key(idempotency_key)
    now = ctx.clock.now()
    redemption_id = new_id("rdm")
    try:
        with ctx.db.transaction() as tx:
            if key is not None:
                earlier = _redemption_by_key(tx, ctx.tenant_id, member_id, key)
                if earlier is not None:
                    if earlier["item_id"] != item_id or earlier["quantity"] != quantity:
                        raise Conflict("idempotency_key_reused", key=key)
                    return earlier, True
            item = _item(tx, ctx.tenant_id, item_id)
            if not item.active:
                raise Conflict("redemption_item_inactive", id=item_id)
            require_member(tx, ctx.tenant_id, member_id)
            take(tx, Lock.REDEMPTION_ITEMS)
            if item.stock is not None:
                taken = tx.execute(
                    update(redemption_items)
                    .where(
                        redemption_items.c.tenant_id == ctx.tenant_id,
                        redemption_items.c.id == item_id,
                        redemption_items.c.stock >= quantity,
                    )
                    .values(stock=redemption_items.c.stock - quantity)
                ).rowcount
                if taken != 1:
                    raise Conflict("redemption_out_of_stock", id=item_id)
            points = item.points * quantity
            spend(
                tx,
                tenant_id=ctx.tenant_id,
                member_id=member_id,
                points=points,
                purpose="redemption",
                ref=redemption_id,
                at=now,
            )
            tx.execute(
                insert(redemptions).values(
                    tenant_id=ctx.tenant_id,
                    id=redemption_id,
                    member_id=member_id,
                    item_id=item_id,
                    quantity=quantity,
                    points=points,
                    idempotency_key=key,
                    created_at=now,
                )
            )
            record_event(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                type="PointsRedeemed",
                subject_type="member",
                subject_id=member_id,
                payload={"redemption_id": redemption_id, "item_id": item_id, "points": points},
            )
            found = _redemption_by_id(tx, ctx.tenant_id, redemption_id)
            assert found is not None
            return found, False
    except IntegrityError:
        if key is None:
            raise
    with ctx.db.read() as tx:
        earlier = _redemption_by_key(tx, ctx.tenant_id, member_id, key)
    if earlier is None or earlier["item_id"] != item_id or earlier["quantity"] != quantity:
        raise Conflict("idempotency_key_reused", key=key)
    return earlier, True


def _redemption_view(row: Row[Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: v for k, v in row._mapping.items() if k not in ("tenant_id", "idempotency_key")}


def _redemption_by_key(
    tx: Connection, tenant_id: str, member_id: str, key: str
) -> dict[str, Any] | None:
    return _redemption_view(
        tx.execute(
            select(redemptions).where(
                redemptions.c.tenant_id == tenant_id,
                redemptions.c.member_id == member_id,
                redemptions.c.idempotency_key == key,
            )
        ).first()
    )


def _redemption_by_id(tx: Connection, tenant_id: str, redemption_id: str) -> dict[str, Any] | None:
    return _redemption_view(
        tx.execute(
            select(redemptions).where(
                redemptions.c.tenant_id == tenant_id, redemptions.c.id == redemption_id
            )
        ).first()
    )


def lots_balance(tx: Connection, tenant_id: str, member_id: str) -> int:
    """What is left of the member's lots (equal to its points account)."""
    total = tx.execute(
        select(func.coalesce(func.sum(point_lots.c.remaining), 0)).where(
            point_lots.c.tenant_id == tenant_id, point_lots.c.member_id == member_id
        )
    ).scalar_one()
    return int(total)
