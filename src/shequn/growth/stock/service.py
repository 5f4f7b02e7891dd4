"""Stock orders, buybacks and an agent's stock: units and money move through the ledger
together (a currency per product for the units), never below zero; a use case on an agent's
stock locks the agent's member row first, so its cover check and its buyback quote see every
earlier stock move of that agent (retail draws only ever lower the stock)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select
from sqlalchemy.exc import IntegrityError

from shequn.catalog.tables import product_tier_prices, products
from shequn.context import Ctx
from shequn.distribution.commissions import OWN_SALE_KIND
from shequn.distribution.tables import commission_lines
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.growth.settings.rules import GrowthSettings
from shequn.growth.settings.service import load_growth_settings
from shequn.growth.stock.rules import (
    HISTORY_DAYS,
    MAX_UNITS,
    StockLot,
    check_cover,
    check_lines,
    cover_tenths,
    monthly_sales,
    quote_buyback,
    shown_days,
    unsold_lots,
)
from shequn.growth.stock.tables import stock_buybacks, stock_lots, stock_orders
from shequn.ids import new_id
from shequn.ledger.rules import (
    Posting,
    Purpose,
    brand_account,
    debt_repayment,
    member_account,
    stock_account,
    stock_currency,
    system_account,
)
from shequn.ledger.service import (
    JournalEntry,
    debit_if_covered,
    lock_balances,
    open_stock_accounts,
    post_entries,
)
from shequn.ledger.tables import accounts, journal_transactions, postings
from shequn.locks import Lock, take
from shequn.members.repo import require_member
from shequn.tenancy.repo import load_settings

BRAND_STOCK = brand_account(Purpose.STOCK)


def stock_entry_conditions(tx: Connection, tenant_id: str) -> dict[str, int]:
    """What the tenant asks of an agent's stock, for the compliance check: a minimum first
    stock order (入门费 in the form of goods when above 0), the cover limit, the buyback."""
    settings = load_growth_settings(tx, tenant_id)
    return {
        "min_first_stock_order_fen": settings.min_first_stock_order_fen,
        "stock_cover_limit_days": settings.stock_cover_limit_days,
        "buyback_window_days": settings.buyback_window_days,
        "buyback_price_bp": settings.buyback_price_bp,
    }


def _balances(
    tx: Connection, tenant_id: str, member_id: str, product_ids: Sequence[str]
) -> dict[str, int]:
    ids = {stock_account(member_id, p): p for p in product_ids}
    rows = tx.execute(
        select(accounts.c.id, accounts.c.balance).where(
            accounts.c.tenant_id == tenant_id, accounts.c.id.in_(sorted(ids))
        )
    ).all()
    found = {ids[r.id]: int(r.balance) for r in rows}
    return {p: found.get(p, 0) for p in product_ids}


def _sold_since(
    tx: Connection, tenant_id: str, member_id: str, product_ids: Sequence[str], since: datetime
) -> dict[str, int]:
    """Units drawn by retail orders from the agent's stock since `since`, per product."""
    ids = {stock_account(member_id, p): p for p in product_ids}
    rows = tx.execute(
        select(postings.c.account_id, func.coalesce(func.sum(-postings.c.amount), 0))
        .select_from(
            postings.join(
                journal_transactions,
                (journal_transactions.c.tenant_id == postings.c.tenant_id)
                & (journal_transactions.c.id == postings.c.transaction_id),
            )
        )
        .where(
            postings.c.tenant_id == tenant_id,
            postings.c.account_id.in_(sorted(ids)),
            postings.c.occurred_at >= since,
            journal_transactions.c.kind == "stock_drawn",
        )
        .group_by(postings.c.account_id)
    ).all()
    found = {ids[r[0]]: int(r[1]) for r in rows}
    return {p: found.get(p, 0) for p in product_ids}


def _lots(
    tx: Connection, tenant_id: str, member_id: str, product_ids: Sequence[str]
) -> dict[str, list[StockLot]]:
    rows = tx.execute(
        select(
            stock_lots.c.product_id,
            stock_lots.c.purchased_at,
            stock_lots.c.quantity,
            stock_lots.c.unit_cost_fen,
        )
        .where(
            stock_lots.c.tenant_id == tenant_id,
            stock_lots.c.member_id == member_id,
            stock_lots.c.product_id.in_(sorted(set(product_ids))),
        )
        .order_by(stock_lots.c.purchased_at, stock_lots.c.id)
    ).all()
    found: dict[str, list[StockLot]] = {p: [] for p in product_ids}
    for r in rows:
        found[r.product_id].append(StockLot(r.purchased_at, r.quantity, r.unit_cost_fen))
    return found


def _monthly(lots: Sequence[StockLot], sold: int, now: datetime, settings: GrowthSettings) -> int:
    first = min((lot.purchased_at for lot in lots), default=None)
    return monthly_sales(
        sold, first_purchase_at=first, now=now, default=settings.new_agent_monthly_sales
    )


def _agent(tx: Connection, tenant_id: str, member_id: str) -> Row[Any]:
    """The agent, locked: its stock orders and buybacks go one at a time."""
    agent = require_member(tx, tenant_id, member_id, for_update=True)
    if agent.anonymised_at is not None:
        raise Conflict("member_anonymised", id=member_id)
    return agent


def _priced(
    tx: Connection,
    tenant_id: str,
    tier_id: str | None,
    skus: Sequence[str],
    quoted: Mapping[str, int] | None = None,
) -> dict[str, Row[Any]]:
    if tier_id is None:
        raise Conflict("stock_requires_tier")
    rows = tx.execute(
        select(
            products.c.id,
            products.c.sku,
            products.c.name,
            products.c.active,
            product_tier_prices.c.wholesale_price_fen,
        )
        .select_from(
            products.outerjoin(
                product_tier_prices,
                (product_tier_prices.c.tenant_id == products.c.tenant_id)
                & (product_tier_prices.c.product_id == products.c.id)
                & (product_tier_prices.c.tier_id == tier_id),
            )
        )
        .where(products.c.tenant_id == tenant_id, products.c.sku.in_(sorted(set(skus))))
    ).all()
    found: dict[str, Any] = {r.sku: r for r in rows}
    for sku in skus:
        if sku not in found:
            raise NotFound("product_not_found", sku=sku)
        if not found[sku].active:
            raise Conflict("product_inactive", sku=sku)
        if quoted is None and found[sku].wholesale_price_fen is None:
            raise Conflict("stock_no_wholesale_price", sku=sku)
    return found


def _order_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "member_id": row.member_id,
        "tier_id": row.tier_id,
        "lines": [dict(line) for line in row.lines],
        "amount_fen": row.amount_fen,
        "provider_txn_id": row.provider_txn_id,
        "created_at": row.created_at,
    }


def stock_order_by_txn(tx: Connection, tenant_id: str, txn: str) -> Row[Any] | None:
    return tx.execute(
        select(stock_orders).where(
            stock_orders.c.tenant_id == tenant_id, stock_orders.c.provider_txn_id == txn
        )
    ).first()


def price_and_check(
    tx: Connection,
    *,
    tenant_id: str,
    agent: Row[Any],
    wanted: Sequence[tuple[str, int]],
    now: datetime,
    quoted: Mapping[str, int] | None = None,
    paying_fen: int | None = None,
) -> dict[str, Any]:
    """What a stock order of `wanted` costs the agent (at its tier's wholesale prices, or at
    the `quoted` unit prices a request locked in) and the days of cover each product would
    then hold; refused over the tenant's cover limit (with the figure) or under its first
    order minimum; `paying_fen`: the amount paid, refused unless it is what the units cost."""
    growth = load_growth_settings(tx, tenant_id)
    priced = _priced(tx, tenant_id, agent.tier_id, [sku for sku, _ in wanted], quoted)
    unit = {
        sku: (quoted[sku] if quoted is not None else priced[sku].wholesale_price_fen)
        for sku, _ in wanted
    }
    product_ids = [priced[sku].id for sku, _ in wanted]
    balances = _balances(tx, tenant_id, agent.id, product_ids)
    sold = _sold_since(tx, tenant_id, agent.id, product_ids, now - timedelta(days=HISTORY_DAYS))
    lots = _lots(tx, tenant_id, agent.id, product_ids)
    expected = sum(unit[sku] * quantity for sku, quantity in wanted)
    if paying_fen is not None and paying_fen != expected:
        raise InvalidInput("stock_amount_mismatch", expected_fen=expected, got_fen=paying_fen)
    first_order = not any(lots.values())
    if first_order and expected < growth.min_first_stock_order_fen:
        raise Conflict(
            "stock_first_order_minimum",
            minimum_fen=growth.min_first_stock_order_fen,
            amount_fen=expected,
        )
    lines = []
    for sku, quantity in wanted:
        product_id = priced[sku].id
        after = check_cover(
            sku=sku,
            units_after=balances[product_id] + quantity,
            monthly=_monthly(lots[product_id], sold[product_id], now, growth),
            limit_days=growth.stock_cover_limit_days,
        )
        lines.append(
            {
                "sku": sku,
                "product_id": product_id,
                "name": priced[sku].name,
                "quantity": quantity,
                "unit_cost_fen": unit[sku],
                "amount_fen": unit[sku] * quantity,
                "units_after": balances[product_id] + quantity,
                "cover_days_after": shown_days(after),
            }
        )
    return {
        "member_id": agent.id,
        "tier_id": agent.tier_id,
        "lines": lines,
        "amount_fen": expected,
        "first_order": first_order,
        "min_first_stock_order_fen": growth.min_first_stock_order_fen,
        "cover_limit_days": growth.stock_cover_limit_days,
    }


def quote_stock_order(
    ctx: Ctx, *, member_id: str, lines: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """What a stock order would cost the agent now and the days of cover it would leave, or
    the refusal it would meet; changes nothing."""
    wanted = check_lines([(line["sku"], line["quantity"]) for line in lines])
    with ctx.db.read() as tx:
        agent = require_member(tx, ctx.tenant_id, member_id)
        if agent.anonymised_at is not None:
            raise Conflict("member_anonymised", id=member_id)
        return price_and_check(
            tx, tenant_id=ctx.tenant_id, agent=agent, wanted=wanted, now=ctx.clock.now()
        )


def clean_txn_id(provider_txn_id: str) -> str:
    txn = (provider_txn_id or "").strip()
    if not txn or len(txn) > 120:
        raise InvalidInput("provider_txn_id_invalid")
    return txn


def place_stock_order_in(
    tx: Connection,
    *,
    tenant_id: str,
    actor: str,
    now: datetime,
    member_id: str,
    lines: Sequence[Mapping[str, Any]],
    provider_txn_id: str,
    amount_fen: int,
    quoted: Mapping[str, int] | None = None,
) -> tuple[dict[str, Any], bool]:
    """A paid stock order in the caller's transaction (see `place_stock_order`); `quoted`:
    the unit prices a stock order request locked in, instead of today's."""
    txn = clean_txn_id(provider_txn_id)
    wanted = check_lines([(line["sku"], line["quantity"]) for line in lines])
    earlier = stock_order_by_txn(tx, tenant_id, txn)
    if earlier is not None:
        if earlier.member_id != member_id or earlier.amount_fen != amount_fen:
            raise Conflict("payment_txn_reused", provider_txn_id=txn)
        return _order_view(earlier), True
    settings = load_settings(tx, tenant_id)
    agent = _agent(tx, tenant_id, member_id)
    checked = price_and_check(
        tx,
        tenant_id=tenant_id,
        agent=agent,
        wanted=wanted,
        now=now,
        quoted=quoted,
        paying_fen=amount_fen,
    )
    expected = checked["amount_fen"]
    order_id = new_id("sto")
    order_lines = [
        {
            "sku": line["sku"],
            "product_id": line["product_id"],
            "quantity": line["quantity"],
            "unit_cost_fen": line["unit_cost_fen"],
        }
        for line in checked["lines"]
    ]
    product_ids = [line["product_id"] for line in order_lines]
    tx.execute(
        insert(stock_orders).values(
            tenant_id=tenant_id,
            id=order_id,
            member_id=member_id,
            tier_id=agent.tier_id,
            lines=order_lines,
            amount_fen=expected,
            provider_txn_id=txn,
            created_at=now,
        )
    )
    take(tx, Lock.STOCK)
    tx.execute(
        insert(stock_lots),
        [
            {
                "tenant_id": tenant_id,
                "id": new_id("stl"),
                "member_id": member_id,
                "product_id": line["product_id"],
                "stock_order_id": order_id,
                "quantity": line["quantity"],
                "unit_cost_fen": line["unit_cost_fen"],
                "purchased_at": now,
            }
            for line in order_lines
        ],
    )
    open_stock_accounts(tx, tenant_id=tenant_id, member_id=member_id, product_ids=product_ids)
    entries = [
        JournalEntry(
            "stock_purchased",
            "stock_order",
            order_id,
            [
                Posting(
                    stock_account(member_id, line["product_id"]),
                    line["quantity"],
                    stock_currency(line["product_id"]),
                ),
                Posting(BRAND_STOCK, -line["quantity"], stock_currency(line["product_id"])),
            ],
        )
        for line in order_lines
    ]
    if expected > 0:
        entries.append(
            JournalEntry(
                "stock_paid",
                "stock_order",
                order_id,
                [
                    Posting(system_account(Purpose.PAYMENT_CLEARING), -expected, settings.currency),
                    Posting(brand_account(Purpose.SALES), expected, settings.currency),
                ],
            )
        )
    post_entries(tx, tenant_id=tenant_id, at=now, entries=entries)
    record_event(
        tx,
        tenant_id=tenant_id,
        actor=actor,
        at=now,
        type="StockOrdered",
        subject_type="member",
        subject_id=member_id,
        payload={
            "stock_order_id": order_id,
            "amount_fen": expected,
            "units": sum(q for _, q in wanted),
        },
    )
    row = stock_order_by_txn(tx, tenant_id, txn)
    assert row is not None
    return _order_view(row), False


def place_stock_order(
    ctx: Ctx,
    *,
    member_id: str,
    lines: Sequence[Mapping[str, Any]],
    provider_txn_id: str,
    amount_fen: int,
) -> tuple[dict[str, Any], bool]:
    """An agent's paid stock order at its tier's wholesale price: refused if a product would
    then hold more days of cover than the tenant allows (the figure in the message), or if the
    amount is not what the units cost. Idempotent on the provider's transaction id. Returns
    (stock order, replayed)."""
    txn = clean_txn_id(provider_txn_id)
    try:
        with ctx.db.transaction() as tx:
            return place_stock_order_in(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                now=ctx.clock.now(),
                member_id=member_id,
                lines=lines,
                provider_txn_id=txn,
                amount_fen=amount_fen,
            )
    except IntegrityError:
        pass
    with ctx.db.read() as tx:
        earlier = stock_order_by_txn(tx, ctx.tenant_id, txn)
    if earlier is None or earlier.member_id != member_id or earlier.amount_fen != amount_fen:
        raise Conflict("payment_txn_reused", provider_txn_id=txn)
    return _order_view(earlier), True


def buy_back(ctx: Ctx, *, member_id: str, sku: str, quantity: int) -> dict[str, Any]:
    """Buy back unsold units under the tenant's policy: only units bought within its window,
    at its share of what the agent paid for them, into the agent's wallet."""
    if not 1 <= quantity <= MAX_UNITS:
        raise InvalidInput("quantity_invalid", sku=sku, max=MAX_UNITS)
    now = ctx.clock.now()
    buyback_id = new_id("sbb")
    with ctx.db.transaction() as tx:
        settings = load_settings(tx, ctx.tenant_id)
        growth = load_growth_settings(tx, ctx.tenant_id)
        _agent(tx, ctx.tenant_id, member_id)
        product = tx.execute(
            select(products.c.id).where(
                products.c.tenant_id == ctx.tenant_id, products.c.sku == sku
            )
        ).scalar_one_or_none()
        if product is None:
            raise NotFound("product_not_found", sku=sku)
        take(tx, Lock.STOCK)
        lots = _lots(tx, ctx.tenant_id, member_id, [product])[product]
        balance = _balances(tx, ctx.tenant_id, member_id, [product])[product]
        quote = quote_buyback(
            lots,
            balance=balance,
            quantity=quantity,
            now=now,
            window_days=growth.buyback_window_days,
            price_bp=growth.buyback_price_bp,
        )
        account = stock_account(member_id, product)
        if not debit_if_covered(tx, tenant_id=ctx.tenant_id, account_id=account, amount=quantity):
            raise Conflict(
                "stock_buyback_exceeds",
                quantity=quantity,
                eligible=0,
                window_days=growth.buyback_window_days,
            )
        debt_id = member_account(member_id, Purpose.DEBT)
        debt = lock_balances(tx, tenant_id=ctx.tenant_id, account_ids=[debt_id]).get(debt_id, 0)
        repay = debt_repayment(quote.amount_fen, debt)
        tx.execute(
            insert(stock_buybacks).values(
                tenant_id=ctx.tenant_id,
                id=buyback_id,
                member_id=member_id,
                product_id=product,
                quantity=quantity,
                amount_fen=quote.amount_fen,
                created_at=now,
            )
        )
        currency = stock_currency(product)
        entries = [
            JournalEntry(
                "stock_bought_back",
                "stock_buyback",
                buyback_id,
                [Posting(account, -quantity, currency), Posting(BRAND_STOCK, quantity, currency)],
                frozenset({account}),
            )
        ]
        if quote.amount_fen > 0:
            entries.append(
                JournalEntry(
                    "stock_buyback_paid",
                    "stock_buyback",
                    buyback_id,
                    [
                        Posting(brand_account(Purpose.SALES), -quote.amount_fen, settings.currency),
                        Posting(debt_id, repay, settings.currency),
                        Posting(
                            member_account(member_id, Purpose.WALLET_AVAILABLE),
                            quote.amount_fen - repay,
                            settings.currency,
                        ),
                    ],
                )
            )
        post_entries(tx, tenant_id=ctx.tenant_id, at=now, entries=entries)
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="StockBoughtBack",
            subject_type="member",
            subject_id=member_id,
            payload={
                "buyback_id": buyback_id,
                "sku": sku,
                "quantity": quantity,
                "amount_fen": quote.amount_fen,
            },
        )
    return {
        "id": buyback_id,
        "member_id": member_id,
        "sku": sku,
        "quantity": quantity,
        "amount_fen": quote.amount_fen,
        "stock_after": balance - quantity,
        "created_at": now,
    }


def agent_stock(ctx: Ctx, *, member_id: str) -> dict[str, Any]:
    """An agent's stock by product: units held, sold from stock in 30 days, days of cover,
    what a buyback could take back now and at what price, and its own-sale proceeds."""
    now = ctx.clock.now()
    with ctx.db.read() as tx:
        agent = require_member(tx, ctx.tenant_id, member_id)
        growth = load_growth_settings(tx, ctx.tenant_id)
        product_ids = sorted(
            set(
                tx.execute(
                    select(stock_lots.c.product_id).where(
                        stock_lots.c.tenant_id == ctx.tenant_id, stock_lots.c.member_id == member_id
                    )
                ).scalars()
            )
        )
        named = {
            r.id: r
            for r in tx.execute(
                select(products.c.id, products.c.sku, products.c.name).where(
                    products.c.tenant_id == ctx.tenant_id, products.c.id.in_(product_ids)
                )
            ).all()
        }
        balances = _balances(tx, ctx.tenant_id, member_id, product_ids)
        sold = _sold_since(
            tx, ctx.tenant_id, member_id, product_ids, now - timedelta(days=HISTORY_DAYS)
        )
        lots = _lots(tx, ctx.tenant_id, member_id, product_ids)
        proceeds = tx.execute(
            select(
                func.coalesce(
                    func.sum(
                        commission_lines.c.amount_fen
                        - commission_lines.c.cancelled_fen
                        - commission_lines.c.reversed_fen
                    ),
                    0,
                )
            ).where(
                commission_lines.c.tenant_id == ctx.tenant_id,
                commission_lines.c.beneficiary_id == member_id,
                commission_lines.c.kind == OWN_SALE_KIND,
            )
        ).scalar_one()
    items = []
    since = now - timedelta(days=growth.buyback_window_days)
    for product_id in product_ids:
        monthly = _monthly(lots[product_id], sold[product_id], now, growth)
        cover = cover_tenths(balances[product_id], monthly)
        unsold = unsold_lots(lots[product_id], balances[product_id])
        eligible = sum(part for lot, part in unsold if lot.purchased_at >= since)
        cost = sum(lot.unit_cost_fen * part for lot, part in unsold)
        items.append(
            {
                "sku": named[product_id].sku,
                "name": named[product_id].name,
                "units": balances[product_id],
                "cost_fen": cost,
                "sold_30d": sold[product_id],
                "monthly_sales_used": monthly,
                "cover_days": shown_days(cover),
                "buyback_eligible_units": eligible,
            }
        )
    return {
        "member_id": member_id,
        "tier_id": agent.tier_id,
        "cover_limit_days": growth.stock_cover_limit_days,
        "buyback_window_days": growth.buyback_window_days,
        "buyback_price_bp": growth.buyback_price_bp,
        "own_sale_proceeds_fen": int(proceeds),
        "products": items,
    }


def overstocked_in(tx: Connection, tenant_id: str, now: datetime) -> list[dict[str, Any]]:
    """Agents holding more of a product than they sell within the tenant's cover limit (or
    stock that has not sold at all in 30 days once they are past the new-agent default):
    stock rotting in their hands, for an operator to talk to them or buy it back. Three
    set-based reads whatever the number of agents, most days of cover first."""
    growth = load_growth_settings(tx, tenant_id)
    held = tx.execute(
        select(
            stock_lots.c.member_id,
            stock_lots.c.product_id,
            func.min(stock_lots.c.purchased_at).label("first"),
        )
        .where(stock_lots.c.tenant_id == tenant_id)
        .group_by(stock_lots.c.member_id, stock_lots.c.product_id)
    ).all()
    if not held:
        return []
    ids = {stock_account(r.member_id, r.product_id): r for r in held}
    balances = dict(
        tx.execute(
            select(accounts.c.id, accounts.c.balance).where(
                accounts.c.tenant_id == tenant_id,
                accounts.c.id.in_(sorted(ids)),
                accounts.c.balance > 0,
            )
        ).all()
    )
    sold = (
        dict(
            tx.execute(
                select(postings.c.account_id, func.coalesce(func.sum(-postings.c.amount), 0))
                .select_from(
                    postings.join(
                        journal_transactions,
                        (journal_transactions.c.tenant_id == postings.c.tenant_id)
                        & (journal_transactions.c.id == postings.c.transaction_id),
                    )
                )
                .where(
                    postings.c.tenant_id == tenant_id,
                    postings.c.account_id.in_(sorted(balances)),
                    postings.c.occurred_at >= now - timedelta(days=HISTORY_DAYS),
                    journal_transactions.c.kind == "stock_drawn",
                )
                .group_by(postings.c.account_id)
            ).all()
        )
        if balances
        else {}
    )
    found = []
    for account_id, balance in balances.items():
        row = ids[account_id]
        monthly = monthly_sales(
            int(sold.get(account_id, 0)),
            first_purchase_at=row.first,
            now=now,
            default=growth.new_agent_monthly_sales,
        )
        cover = cover_tenths(int(balance), monthly)
        if cover is None or cover > growth.stock_cover_limit_days * 10:
            found.append(
                {
                    "member_id": row.member_id,
                    "product_id": row.product_id,
                    "units": int(balance),
                    "cover_days": shown_days(cover),
                    "cover_tenths": cover,
                }
            )
    return sorted(found, key=lambda f: (f["cover_tenths"] is not None, -(f["cover_tenths"] or 0)))
