"""Products and their per-tier prices. Every change of a product or of its tier prices moves
its `version` (a trigger does it), so that a copy of it is known stale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from shequn.catalog.rules import (
    check_price,
    clean_category,
    clean_product_name,
    clean_sku,
    parse_ladder_role,
)
from shequn.catalog.tables import product_tier_prices, products
from shequn.context import Ctx
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.ids import new_id
from shequn.locks import Lock, take
from shequn.tiers.repo import existing_tier_ids


def _write_tier_prices(
    tx: Connection, tenant_id: str, product_id: str, tier_prices: Sequence[dict[str, Any]]
) -> None:
    tier_ids = [tp["tier_id"] for tp in tier_prices]
    if len(set(tier_ids)) != len(tier_ids):
        raise InvalidInput("tier_price_duplicate")
    missing = sorted(set(tier_ids) - existing_tier_ids(tx, tenant_id, tier_ids))
    if missing:
        raise NotFound("tier_not_found", id=missing[0])
    tx.execute(
        delete(product_tier_prices).where(
            product_tier_prices.c.tenant_id == tenant_id,
            product_tier_prices.c.product_id == product_id,
        )
    )
    rows = []
    for tp in tier_prices:
        member_price = tp.get("member_price_fen")
        wholesale = tp.get("wholesale_price_fen")
        rows.append(
            {
                "tenant_id": tenant_id,
                "product_id": product_id,
                "tier_id": tp["tier_id"],
                "member_price_fen": None
                if member_price is None
                else check_price(member_price, "member_price_fen"),
                "wholesale_price_fen": None
                if wholesale is None
                else check_price(wholesale, "wholesale_price_fen"),
            }
        )
    if rows:
        tx.execute(insert(product_tier_prices), rows)


def _check_tier_prices_below_list(tx: Connection, tenant_id: str, product_id: str) -> None:
    """A tier price is a discount: never above the list price (checked after every change of
    either, inside the same transaction, so a refused change leaves nothing behind)."""
    above = tx.execute(
        select(product_tier_prices.c.tier_id, products.c.price_fen)
        .join(
            products,
            (products.c.tenant_id == product_tier_prices.c.tenant_id)
            & (products.c.id == product_tier_prices.c.product_id),
        )
        .where(
            product_tier_prices.c.tenant_id == tenant_id,
            product_tier_prices.c.product_id == product_id,
            (product_tier_prices.c.member_price_fen > products.c.price_fen)
            | (product_tier_prices.c.wholesale_price_fen > products.c.price_fen),
        )
        .order_by(product_tier_prices.c.tier_id)
    ).first()
    if above is not None:
        raise InvalidInput(
            "tier_price_above_list", tier_id=above.tier_id, price_fen=above.price_fen
        )


def _tier_prices(
    tx: Connection, tenant_id: str, product_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {p: [] for p in product_ids}
    if not product_ids:
        return out
    rows = tx.execute(
        select(product_tier_prices)
        .where(
            product_tier_prices.c.tenant_id == tenant_id,
            product_tier_prices.c.product_id.in_(list(product_ids)),
        )
        .order_by(product_tier_prices.c.tier_id)
    ).all()
    for p in rows:
        out[p.product_id].append(
            {
                "tier_id": p.tier_id,
                "member_price_fen": p.member_price_fen,
                "wholesale_price_fen": p.wholesale_price_fen,
            }
        )
    return out


def _view(row: Any, prices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row.id,
        "sku": row.sku,
        "name": row.name,
        "price_fen": row.price_fen,
        "ladder_role": row.ladder_role,
        "category": row.category,
        "active": row.active,
        "tier_prices": prices,
        "created_at": row.created_at,
    }


def _product_view(tx: Connection, tenant_id: str, row: Any) -> dict[str, Any]:
    return _view(row, _tier_prices(tx, tenant_id, [row.id])[row.id])


def create_product(
    ctx: Ctx,
    *,
    sku: str,
    name: str,
    price_fen: int,
    ladder_role: str,
    category: str | None = None,
    active: bool = True,
    tier_prices: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    values = {
        "sku": clean_sku(sku),
        "name": clean_product_name(name),
        "price_fen": check_price(price_fen),
        "ladder_role": parse_ladder_role(ladder_role).value,
        "category": clean_category(category),
        "active": bool(active),
    }
    product_id = new_id("prd")
    now = ctx.clock.now()
    try:
        with ctx.db.transaction() as tx:
            if tx.execute(
                select(products.c.id).where(
                    products.c.tenant_id == ctx.tenant_id, products.c.sku == values["sku"]
                )
            ).first():
                raise Conflict("sku_taken", sku=values["sku"])
            tx.execute(
                insert(products).values(
                    tenant_id=ctx.tenant_id, id=product_id, created_at=now, updated_at=now, **values
                )
            )
            _write_tier_prices(tx, ctx.tenant_id, product_id, tier_prices)
            _check_tier_prices_below_list(tx, ctx.tenant_id, product_id)
            record_event(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                type="ProductCreated",
                subject_type="product",
                subject_id=product_id,
                payload={"sku": values["sku"], "price_fen": values["price_fen"]},
            )
            row = tx.execute(
                select(products).where(
                    products.c.tenant_id == ctx.tenant_id, products.c.id == product_id
                )
            ).one()
            return _product_view(tx, ctx.tenant_id, row)
    except IntegrityError:
        raise Conflict("sku_taken", sku=values["sku"]) from None


def _require_product(tx: Connection, tenant_id: str, sku: str) -> Any:
    row = tx.execute(
        select(products).where(products.c.tenant_id == tenant_id, products.c.sku == sku)
    ).first()
    if row is None:
        raise NotFound("product_not_found", sku=sku)
    return row


def get_product(ctx: Ctx, *, sku: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        return _product_view(tx, ctx.tenant_id, _require_product(tx, ctx.tenant_id, sku))


def update_product(ctx: Ctx, *, sku: str, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    tier_prices = fields.pop("tier_prices", None)
    for key, value in fields.items():
        if value is None and key != "category":
            raise InvalidInput("field_required", field=key)
        if key == "name":
            values[key] = clean_product_name(value)
        elif key == "price_fen":
            values[key] = check_price(value)
        elif key == "ladder_role":
            values[key] = parse_ladder_role(value).value
        elif key == "category":
            values[key] = clean_category(value)
        elif key == "active":
            if not isinstance(value, bool):
                raise InvalidInput("field_invalid", field=key)
            values[key] = value
        else:
            raise InvalidInput("field_unknown", field=key)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        row = _require_product(tx, ctx.tenant_id, sku)
        if values or tier_prices is not None:
            take(tx, Lock.PRODUCTS)
            tx.execute(
                update(products)
                .where(products.c.tenant_id == ctx.tenant_id, products.c.id == row.id)
                .values(**values, updated_at=now)
            )
        if tier_prices is not None:
            _write_tier_prices(tx, ctx.tenant_id, row.id, tier_prices)
        if tier_prices is not None or "price_fen" in values:
            _check_tier_prices_below_list(tx, ctx.tenant_id, row.id)
        if values or tier_prices is not None:
            record_event(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                type="ProductChanged",
                subject_type="product",
                subject_id=row.id,
                payload={
                    "fields": sorted(values) + (["tier_prices"] if tier_prices is not None else [])
                },
            )
        return _product_view(tx, ctx.tenant_id, _require_product(tx, ctx.tenant_id, sku))


def list_products(
    ctx: Ctx,
    *,
    ladder_role: str | None = None,
    category: str | None = None,
    active: bool | None = None,
) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        query = select(products).where(products.c.tenant_id == ctx.tenant_id)
        if ladder_role is not None:
            query = query.where(products.c.ladder_role == parse_ladder_role(ladder_role).value)
        if category is not None:
            query = query.where(products.c.category == category)
        if active is not None:
            query = query.where(products.c.active.is_(active))
        rows = tx.execute(query.order_by(products.c.sku)).all()
        prices = _tier_prices(tx, ctx.tenant_id, [r.id for r in rows])
        return [_view(r, prices[r.id]) for r in rows]
