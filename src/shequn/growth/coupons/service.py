"""Coupon templates, issuing coupons (operators to a list or a tag, programs, claims by code),
a member's coupons, and the part coupons play in an order: locked and checked before it is
written, used by it, given back when it is cancelled or refunded (as the template says).

Every issue of a template locks the template's row first, so its total and per-member limits
hold however many issues and claims run at once; using a coupon locks the coupon's row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shequn.context import Ctx
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.growth.coupons.rules import (
    CouponKind,
    CouponScope,
    CouponStatus,
    CouponTerms,
    UsableCoupon,
    check_usable,
    validate_template,
    validity,
)
from shequn.growth.coupons.tables import coupon_templates, coupons, order_discounts
from shequn.ids import new_id
from shequn.locks import Lock, lock_rows
from shequn.members.repo import require_member
from shequn.members.rules import normalise_tag
from shequn.members.tables import member_tags, members

MAX_ISSUE_LIST = 10_000
CHUNK = 2_000


def _template_view(row: Row[Any]) -> dict[str, Any]:
    data = {k: v for k, v in row._mapping.items() if k != "tenant_id"}
    data["scope_values"] = list(row.scope_values)
    return data


def _coupon_view(row: Row[Any], template: Row[Any], now: datetime) -> dict[str, Any]:
    expired = row.valid_until is not None and now >= row.valid_until
    shown = "expired" if row.status == CouponStatus.AVAILABLE.value and expired else row.status
    return {
        "id": row.id,
        "template_id": row.template_id,
        "name": template.name,
        "kind": template.kind,
        "amount_off_fen": template.amount_off_fen,
        "percent_off_bp": template.percent_off_bp,
        "max_discount_fen": template.max_discount_fen,
        "min_spend_fen": template.min_spend_fen,
        "scope": template.scope,
        "scope_values": list(template.scope_values),
        "stack_with_tier_price": template.stack_with_tier_price,
        "stack_with_points": template.stack_with_points,
        "status": shown,
        "source": row.source,
        "valid_from": row.valid_from,
        "valid_until": row.valid_until,
        "order_id": row.order_id,
        "issued_at": row.issued_at,
        "used_at": row.used_at,
    }


def terms_of(template: Row[Any]) -> CouponTerms:
    return CouponTerms(
        kind=CouponKind(template.kind),
        amount_off_fen=template.amount_off_fen,
        percent_off_bp=template.percent_off_bp,
        max_discount_fen=template.max_discount_fen,
        min_spend_fen=template.min_spend_fen,
        scope=CouponScope(template.scope),
        scope_values=frozenset(template.scope_values),
        stack_with_tier_price=template.stack_with_tier_price,
        stack_with_points=template.stack_with_points,
    )


def _template(tx: Connection, tenant_id: str, template_id: str, *, lock: bool = False) -> Row[Any]:
    if lock:
        found = lock_rows(
            tx,
            Lock.COUPONS,
            coupon_templates,
            tenant_id,
            [template_id],
            columns=tuple(coupon_templates.c.keys()),
        )
        row: Row[Any] | None = found[0] if found else None
    else:
        row = tx.execute(
            select(coupon_templates).where(
                coupon_templates.c.tenant_id == tenant_id, coupon_templates.c.id == template_id
            )
        ).first()
    if row is None:
        raise NotFound("coupon_template_not_found", id=template_id)
    return row


def require_template(tx: Connection, tenant_id: str, template_id: str) -> None:
    _template(tx, tenant_id, template_id)


def create_template(ctx: Ctx, **fields: Any) -> dict[str, Any]:
    """A coupon template; coupons are issued from it."""
    values = validate_template(fields)
    template_id = new_id("cpt")
    now = ctx.clock.now()
    try:
        with ctx.db.transaction() as tx:
            tx.execute(
                insert(coupon_templates).values(
                    tenant_id=ctx.tenant_id,
                    id=template_id,
                    issued_count=0,
                    active=True,
                    created_at=now,
                    **values,
                )
            )
            record_event(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                type="CouponTemplateCreated",
                subject_type="coupon_template",
                subject_id=template_id,
                payload={"name": values["name"], "kind": values["kind"]},
            )
            return _template_view(_template(tx, ctx.tenant_id, template_id))
    except IntegrityError:
        raise Conflict("coupon_claim_code_taken", claim_code=values["claim_code"]) from None


def list_templates(ctx: Ctx) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(coupon_templates)
            .where(coupon_templates.c.tenant_id == ctx.tenant_id)
            .order_by(coupon_templates.c.id)
        ).all()
    return [_template_view(r) for r in rows]


def _held_counts(
    tx: Connection, tenant_id: str, template_id: str, member_ids: Sequence[str]
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for start in range(0, len(member_ids), CHUNK):
        chunk = list(member_ids[start : start + CHUNK])
        counts.update(
            tx.execute(
                select(coupons.c.member_id, func.count())
                .where(
                    coupons.c.tenant_id == tenant_id,
                    coupons.c.template_id == template_id,
                    coupons.c.member_id.in_(chunk),
                )
                .group_by(coupons.c.member_id)
            ).all()
        )
    return counts


def _issue(
    tx: Connection,
    *,
    tenant_id: str,
    template: Row[Any],
    member_ids: Sequence[str],
    source: str,
    source_ref: str | None,
    at: datetime,
) -> list[str]:
    """One coupon for each member still under the per-member limit, in id order until the
    total limit; the caller holds the template's row. Returns the members issued to."""
    held = _held_counts(tx, tenant_id, template.id, member_ids)
    wanted = sorted(m for m in set(member_ids) if held.get(m, 0) < template.per_member_limit)
    if template.total_limit is not None:
        wanted = wanted[: max(0, template.total_limit - template.issued_count)]
    if not wanted:
        return []
    start, until = validity(
        issued_at=at,
        valid_from=template.valid_from,
        valid_until=template.valid_until,
        valid_days=template.valid_days,
    )
    for first in range(0, len(wanted), CHUNK):
        tx.execute(
            insert(coupons),
            [
                {
                    "tenant_id": tenant_id,
                    "id": new_id("cpn"),
                    "template_id": template.id,
                    "member_id": member_id,
                    "status": CouponStatus.AVAILABLE.value,
                    "source": source,
                    "source_ref": source_ref,
                    "valid_from": start,
                    "valid_until": until,
                    "order_id": None,
                    "issued_at": at,
                    "used_at": None,
                }
                for member_id in wanted[first : first + CHUNK]
            ],
        )
    tx.execute(
        update(coupon_templates)
        .where(coupon_templates.c.tenant_id == tenant_id, coupon_templates.c.id == template.id)
        .values(issued_count=coupon_templates.c.issued_count + len(wanted))
    )
    return wanted


def issue_coupons(
    ctx: Ctx,
    *,
    template_id: str,
    member_ids: Sequence[str] | None = None,
    tag: str | None = None,
) -> dict[str, Any]:
    """An operator issues one coupon of the template to each member of a list or of a tag
    (members at their per-member limit, and any beyond the total limit, get none)."""
    if (member_ids is None) == (tag is None):
        raise InvalidInput("coupon_issue_target_required")
    if member_ids is not None and not 1 <= len(member_ids) <= MAX_ISSUE_LIST:
        raise InvalidInput("coupon_issue_list_invalid", max=MAX_ISSUE_LIST)
    clean_tag = normalise_tag(tag) if tag is not None else None
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        template = _template(tx, ctx.tenant_id, template_id, lock=True)
        if not template.active:
            raise Conflict("coupon_template_inactive", id=template_id)
        if member_ids is not None:
            wanted = sorted(set(member_ids))
            found: set[str] = set()
            for start in range(0, len(wanted), CHUNK):
                found.update(
                    tx.execute(
                        select(members.c.id).where(
                            members.c.tenant_id == ctx.tenant_id,
                            members.c.id.in_(wanted[start : start + CHUNK]),
                        )
                    ).scalars()
                )
            missing = [m for m in wanted if m not in found]
            if missing:
                raise NotFound("member_not_found", id=missing[0])
            targets = wanted
        else:
            targets = list(
                tx.execute(
                    select(member_tags.c.member_id)
                    .where(member_tags.c.tenant_id == ctx.tenant_id, member_tags.c.tag == clean_tag)
                    .order_by(member_tags.c.member_id)
                ).scalars()
            )
        issued = _issue(
            tx,
            tenant_id=ctx.tenant_id,
            template=template,
            member_ids=targets,
            source="operator",
            source_ref=clean_tag,
            at=now,
        )
        if issued:
            record_event(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                type="CouponsIssued",
                subject_type="coupon_template",
                subject_id=template_id,
                payload={"count": len(issued), "tag": clean_tag},
            )
    return {
        "template_id": template_id,
        "issued": len(issued),
        "skipped": len(targets) - len(issued),
    }


def issue_from_program(
    tx: Connection, *, tenant_id: str, template_id: str, member_id: str, ref: str, at: datetime
) -> str | None:
    """A program's coupon for one member, or None if a limit stops it (the caller's
    transaction, which holds no lock after `Lock.COUPONS`)."""
    template = _template(tx, tenant_id, template_id, lock=True)
    if not template.active:
        return None
    if not _issue(
        tx,
        tenant_id=tenant_id,
        template=template,
        member_ids=[member_id],
        source="program",
        source_ref=ref,
        at=at,
    ):
        return None
    found: str = tx.execute(
        select(coupons.c.id)
        .where(
            coupons.c.tenant_id == tenant_id,
            coupons.c.template_id == template_id,
            coupons.c.member_id == member_id,
            coupons.c.source_ref == ref,
        )
        .order_by(coupons.c.id.desc())
        .limit(1)
    ).scalar_one()
    return found


def claim_coupon(ctx: Ctx, *, member_id: str, code: str) -> dict[str, Any]:
    """A member claims a coupon by the template's code."""
    clean = code.strip()
    if not 1 <= len(clean) <= 32:
        raise InvalidInput("coupon_code_invalid")
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        template_id = tx.execute(
            select(coupon_templates.c.id).where(
                coupon_templates.c.tenant_id == ctx.tenant_id,
                coupon_templates.c.claim_code == clean,
            )
        ).scalar_one_or_none()
        if template_id is None:
            raise NotFound("coupon_code_not_found", claim_code=clean)
        template = _template(tx, ctx.tenant_id, template_id, lock=True)
        require_member(tx, ctx.tenant_id, member_id)
        if not template.active or (
            template.valid_until is not None and now >= template.valid_until
        ):
            raise Conflict("coupon_template_inactive", id=template_id)
        if template.total_limit is not None and template.issued_count >= template.total_limit:
            raise Conflict("coupon_sold_out", id=template_id)
        if not _issue(
            tx,
            tenant_id=ctx.tenant_id,
            template=template,
            member_ids=[member_id],
            source="code",
            source_ref=clean,
            at=now,
        ):
            raise Conflict("coupon_limit_reached", limit=template.per_member_limit)
        row = tx.execute(
            select(coupons)
            .where(
                coupons.c.tenant_id == ctx.tenant_id,
                coupons.c.template_id == template_id,
                coupons.c.member_id == member_id,
            )
            .order_by(coupons.c.id.desc())
            .limit(1)
        ).one()
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="CouponClaimed",
            subject_type="member",
            subject_id=member_id,
            payload={"coupon_id": row.id, "template_id": template_id},
        )
        return _coupon_view(row, template, now)


def member_coupons(ctx: Ctx, *, member_id: str, status: str | None = None) -> list[dict[str, Any]]:
    """The member's coupons, newest first; `status` available, used, expired or void."""
    if status is not None and status not in ("available", "used", "expired", "void"):
        raise InvalidInput("coupon_status_invalid", status=status)
    now = ctx.clock.now()
    with ctx.db.read() as tx:
        require_member(tx, ctx.tenant_id, member_id)
        rows = tx.execute(
            select(coupons)
            .where(coupons.c.tenant_id == ctx.tenant_id, coupons.c.member_id == member_id)
            .order_by(coupons.c.id.desc())
        ).all()
        templates = {
            t.id: t
            for t in tx.execute(
                select(coupon_templates).where(
                    coupon_templates.c.tenant_id == ctx.tenant_id,
                    coupon_templates.c.id.in_(sorted({r.template_id for r in rows})),
                )
            ).all()
        }
    views = [_coupon_view(r, templates[r.template_id], now) for r in rows]
    return [v for v in views if status is None or v["status"] == status]


def lock_usable(
    tx: Connection, *, tenant_id: str, buyer_id: str, coupon_ids: Sequence[str], now: datetime
) -> list[UsableCoupon]:
    """Lock the coupons an order names (in id order) and return their terms, in the order
    named; refuses any that is not the buyer's, not available or not valid now, and two of one
    template."""
    if len(set(coupon_ids)) != len(coupon_ids):
        raise InvalidInput("coupon_repeated")
    rows = {
        r.id: r
        for r in lock_rows(
            tx, Lock.COUPONS, coupons, tenant_id, coupon_ids, columns=tuple(coupons.c.keys())
        )
    }
    for coupon_id in coupon_ids:
        if coupon_id not in rows:
            raise NotFound("coupon_not_found", id=coupon_id)
    template_ids = sorted({r.template_id for r in rows.values()})
    if len(template_ids) != len(coupon_ids):
        raise InvalidInput("coupon_template_repeated")
    templates = {
        t.id: t
        for t in tx.execute(
            select(coupon_templates).where(
                coupon_templates.c.tenant_id == tenant_id,
                coupon_templates.c.id.in_(template_ids),
            )
        ).all()
    }
    usable = []
    for coupon_id in coupon_ids:
        row = rows[coupon_id]
        check_usable(
            coupon_id=coupon_id,
            owner_id=row.member_id,
            buyer_id=buyer_id,
            status=row.status,
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            now=now,
        )
        usable.append(UsableCoupon(coupon_id, terms_of(templates[row.template_id])))
    return usable


def use_coupons(
    tx: Connection,
    *,
    tenant_id: str,
    order_id: str,
    coupon_ids: Sequence[str],
    line_parts: Mapping[str, Mapping[str, int]],
    points_parts: Mapping[str, int],
    at: datetime,
) -> None:
    """Mark the (locked) coupons used by the order and record what each coupon and the points
    took off each line (`line_parts`: line id → coupon id → fen)."""
    if coupon_ids:
        tx.execute(
            update(coupons)
            .where(
                coupons.c.tenant_id == tenant_id,
                coupons.c.id.in_(list(coupon_ids)),
                coupons.c.status == CouponStatus.AVAILABLE.value,
            )
            .values(status=CouponStatus.USED.value, order_id=order_id, used_at=at)
        )
    rows = [
        {
            "tenant_id": tenant_id,
            "order_id": order_id,
            "line_id": line_id,
            "kind": "coupon",
            "coupon_id": coupon_id,
            "amount_fen": amount,
        }
        for line_id, parts in line_parts.items()
        for coupon_id, amount in parts.items()
        if amount > 0
    ] + [
        {
            "tenant_id": tenant_id,
            "order_id": order_id,
            "line_id": line_id,
            "kind": "points",
            "coupon_id": "",
            "amount_fen": amount,
        }
        for line_id, amount in points_parts.items()
        if amount > 0
    ]
    if rows:
        tx.execute(insert(order_discounts), rows)


def order_discount_rows(tx: Connection, tenant_id: str, order_id: str) -> list[dict[str, Any]]:
    rows = tx.execute(
        select(
            order_discounts.c.line_id,
            order_discounts.c.kind,
            order_discounts.c.coupon_id,
            order_discounts.c.amount_fen,
        )
        .where(order_discounts.c.tenant_id == tenant_id, order_discounts.c.order_id == order_id)
        .order_by(order_discounts.c.line_id, order_discounts.c.kind, order_discounts.c.coupon_id)
    ).all()
    return [
        {
            "line_id": r.line_id,
            "kind": r.kind,
            "coupon_id": r.coupon_id or None,
            "amount_fen": r.amount_fen,
        }
        for r in rows
    ]


def restore_order_coupons(
    tx: Connection, *, tenant_id: str, order_id: str, cancelled: bool
) -> list[str]:
    """Give back the coupons an order used: all of them when it was cancelled unpaid, those
    whose template says so when it was refunded in full. Returns the coupons given back (none
    the second time)."""
    used = tx.execute(
        select(coupons.c.id, coupon_templates.c.restore_on_refund)
        .join(
            coupon_templates,
            (coupon_templates.c.tenant_id == coupons.c.tenant_id)
            & (coupon_templates.c.id == coupons.c.template_id),
        )
        .where(
            coupons.c.tenant_id == tenant_id,
            coupons.c.order_id == order_id,
            coupons.c.status == CouponStatus.USED.value,
        )
    ).all()
    back = sorted(r.id for r in used if cancelled or r.restore_on_refund)
    if not back:
        return []
    lock_rows(tx, Lock.COUPONS, coupons, tenant_id, back)
    tx.execute(
        update(coupons)
        .where(
            coupons.c.tenant_id == tenant_id,
            coupons.c.id.in_(back),
            coupons.c.order_id == order_id,
            coupons.c.status == CouponStatus.USED.value,
        )
        .values(status=CouponStatus.AVAILABLE.value, order_id=None, used_at=None)
    )
    return back
