"""Reads of the catalog for the use cases of other domains."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, select

from shequn.catalog.tables import products


def existing_skus(tx: Connection, tenant_id: str, skus: Collection[str]) -> set[str]:
    """Which of `skus` the tenant's catalog holds."""
    if not skus:
        return set()
    return set(
        tx.execute(
            select(products.c.sku).where(
                products.c.tenant_id == tenant_id, products.c.sku.in_(sorted(skus))
            )
        ).scalars()
    )


def active_products(tx: Connection, tenant_id: str) -> list[tuple[str, str, int, str | None]]:
    """(sku, ladder role, price, category) of every active product."""
    rows = tx.execute(
        select(
            products.c.sku, products.c.ladder_role, products.c.price_fen, products.c.category
        ).where(products.c.tenant_id == tenant_id, products.c.active.is_(True))
    ).all()
    return [(r.sku, r.ladder_role, r.price_fen, r.category) for r in rows]
