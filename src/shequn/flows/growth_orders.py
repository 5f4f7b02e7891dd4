"""Creating an order with coupons, points or a share code (`POST /orders` with `coupon_ids`,
`points_fen` or `share_code`; an order with none of them takes the order path as it is).

In one transaction, in the order of `shequn.locks`: the coupons are locked and checked, the
lines priced at the buyer's tier (the list price where a coupon does not stack with it), each
coupon's and the points' discount spread over the lines, the order written with what each line
costs the buyer (its commission is computed on that at payment), the coupons marked used and
the points spent, oldest lot first. A share code attributes the order to the code's member,
whose cloud stock then fulfils it and whose sharing rewards it may earn once it closes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from shequn.context import Ctx
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.growth.coupons.rules import OrderLine, price_order
from shequn.growth.coupons.service import lock_usable, order_discount_rows, use_coupons
from shequn.growth.links.service import share_link_member
from shequn.growth.points.rules import points_for_fen
from shequn.growth.points.service import spend
from shequn.growth.settings.service import load_growth_settings
from shequn.members.repo import member_or_none
from shequn.orders.creation import (
    MAX_LINES,
    MAX_QUANTITY,
    OfferedLine,
    create_order,
    read_buyer_prices,
    write_offered_order,
)
from shequn.orders.views import clean_key, replay
from shequn.tiers.rules import tier_price


def _wanted(lines: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
    if not 1 <= len(lines) <= MAX_LINES:
        raise InvalidInput("order_lines_invalid", max=MAX_LINES)
    wanted = []
    for line in lines:
        sku, quantity = line["sku"], line["quantity"]
        if not 1 <= quantity <= MAX_QUANTITY:
            raise InvalidInput("quantity_invalid", sku=sku, max=MAX_QUANTITY)
        wanted.append((sku, quantity))
    if len({sku for sku, _ in wanted}) != len(wanted):
        raise InvalidInput("order_sku_repeated")
    return wanted


def _request_hash(
    buyer_id: str,
    wanted: Sequence[tuple[str, int]],
    sharer: str | None,
    coupon_ids: Sequence[str],
    points_fen: int,
) -> str:
    canonical = json.dumps(
        [buyer_id, sorted(wanted), sharer, list(coupon_ids), points_fen], separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def create_order_with_offers(
    ctx: Ctx,
    *,
    buyer_id: str,
    lines: Sequence[Mapping[str, Any]],
    idempotency_key: str | None = None,
    attributed_sharer_id: str | None = None,
    share_code: str | None = None,
    coupon_ids: Sequence[str] = (),
    points_fen: int = 0,
) -> tuple[dict[str, Any], bool]:
    """Create an order with coupons, points and a share code. Returns (order, replayed)."""
    wanted = _wanted(lines)
    if points_fen < 0:
        raise InvalidInput("amount_invalid", field="points_fen")
    sharer = attributed_sharer_id
    if share_code is not None:
        with ctx.db.read() as tx:
            coded = share_link_member(tx, ctx.tenant_id, share_code)
        if sharer is not None and sharer != coded:
            raise InvalidInput("share_code_sharer_mismatch")
        # A share code of one's own brings no one: the order is the buyer's own.
        sharer = coded if coded != buyer_id else None
    if not coupon_ids and points_fen == 0:
        return create_order(
            ctx,
            buyer_id=buyer_id,
            lines=lines,
            idempotency_key=idempotency_key,
            attributed_sharer_id=sharer,
        )
    key = clean_key(idempotency_key)
    request_hash = _request_hash(buyer_id, wanted, sharer, coupon_ids, points_fen)
    now = ctx.clock.now()
    try:
        with ctx.db.transaction() as tx:
            if key is not None:
                earlier = replay(tx, ctx.tenant_id, key, request_hash)
                if earlier is not None:
                    return earlier, True
            growth = load_growth_settings(tx, ctx.tenant_id)
            points = points_for_fen(points_fen, growth.fen_per_point)
            coupons = lock_usable(
                tx, tenant_id=ctx.tenant_id, buyer_id=buyer_id, coupon_ids=coupon_ids, now=now
            )
            if sharer is not None:
                if sharer == buyer_id:
                    raise InvalidInput("self_referral")
                if member_or_none(tx, ctx.tenant_id, sharer) is None:
                    raise NotFound("member_not_found", id=sharer)
            prices = read_buyer_prices(tx, ctx, buyer_id=buyer_id, skus=[s for s, _ in wanted])
            order_lines = []
            for sku, quantity in wanted:
                product = prices.products[sku]
                order_lines.append(
                    OrderLine(
                        sku=sku,
                        category=product.category,
                        ladder_role=product.ladder_role,
                        quantity=quantity,
                        list_price_fen=product.price_fen,
                        tier_price_fen=tier_price(
                            product.price_fen,
                            discount_bp=prices.discount_bp,
                            explicit_fen=product.member_price_fen if prices.tier_id else None,
                        ),
                    )
                )
            priced = price_order(
                order_lines, coupons, points_fen=points_fen, points_cap_bp=growth.points_cap_bp
            )
            view = write_offered_order(
                tx,
                ctx,
                buyer_id=buyer_id,
                prices=prices,
                lines=[
                    OfferedLine(p.line.sku, p.line.quantity, p.unit_price_fen, p.total_fen)
                    for p in priced
                ],
                idempotency_key=key,
                request_hash=request_hash,
                sharer_id=sharer,
                at=now,
            )
            line_ids = [line["id"] for line in view["lines"]]
            use_coupons(
                tx,
                tenant_id=ctx.tenant_id,
                order_id=view["id"],
                coupon_ids=coupon_ids,
                line_parts={i: dict(p.coupon_fen) for i, p in zip(line_ids, priced, strict=True)},
                points_parts={i: p.points_fen for i, p in zip(line_ids, priced, strict=True)},
                at=now,
            )
            if points:
                spend(
                    tx,
                    tenant_id=ctx.tenant_id,
                    member_id=buyer_id,
                    points=points,
                    purpose="order",
                    ref=view["id"],
                    at=now,
                )
            discounts = order_discount_rows(tx, ctx.tenant_id, view["id"])
            return {**view, "discounts": discounts}, False
    except IntegrityError:
        if key is None:
            raise
    with ctx.db.read() as tx:
        found = replay(tx, ctx.tenant_id, key, request_hash)
    if found is None:
        raise Conflict("idempotency_key_in_use")
    return found, True
