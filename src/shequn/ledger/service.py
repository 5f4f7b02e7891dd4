"""Journal transactions and balances. Helpers here run inside the caller's transaction and
never commit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shequn.batch import WriteBatch
from shequn.context import Ctx
from shequn.ids import new_id
from shequn.ledger.rules import (
    BRAND_PURPOSES,
    CACHED_MEMBER_PURPOSES,
    MEMBER_PURPOSES,
    MEMBER_SUFFIXES,
    POINTS_CURRENCY,
    SYSTEM_PURPOSES,
    Posting,
    Purpose,
    brand_account,
    check_balanced,
    has_cached_balance,
    member_account,
    stock_account,
    stock_currency,
    system_account,
)
from shequn.ledger.tables import accounts, journal_transactions, postings
from shequn.locks import Lock, lock_rows, take


def ensure_tenant_accounts(tx: Connection, *, tenant_id: str, currency: str) -> None:
    rows = [
        {
            "tenant_id": tenant_id,
            "id": brand_account(p),
            "owner_type": "brand",
            "owner_id": tenant_id,
            "purpose": p.value,
            "currency": currency,
            "tracks_balance": False,
            "balance": 0,
        }
        for p in BRAND_PURPOSES
    ] + [
        {
            "tenant_id": tenant_id,
            "id": system_account(p),
            "owner_type": "system",
            "owner_id": tenant_id,
            "purpose": p.value,
            "currency": currency,
            "tracks_balance": False,
            "balance": 0,
        }
        for p in SYSTEM_PURPOSES
    ]
    tx.execute(insert(accounts), rows)


def _member_accounts(tenant_id: str, member_id: str, currency: str) -> list[dict[str, Any]]:
    return [
        {
            "tenant_id": tenant_id,
            "id": member_account(member_id, p),
            "owner_type": "member",
            "owner_id": member_id,
            "purpose": p.value,
            "currency": POINTS_CURRENCY if p is Purpose.POINTS else currency,
            "tracks_balance": p in CACHED_MEMBER_PURPOSES,
            "balance": 0,
        }
        for p in MEMBER_PURPOSES
    ]


def open_member_accounts(tx: Connection, *, tenant_id: str, member_id: str, currency: str) -> None:
    tx.execute(insert(accounts), _member_accounts(tenant_id, member_id, currency))


def open_stock_accounts(
    tx: Connection, *, tenant_id: str, member_id: str, product_ids: Sequence[str]
) -> None:
    """Open the agent's stock accounts of these products, those it has not got yet (a stock
    order racing another for the same agent opens each once)."""
    take(tx, Lock.ACCOUNTS)
    rows = [
        {
            "tenant_id": tenant_id,
            "id": stock_account(member_id, product_id),
            "owner_type": "member",
            "owner_id": member_id,
            "purpose": Purpose.STOCK.value,
            "currency": stock_currency(product_id),
            "tracks_balance": True,
            "balance": 0,
        }
        for product_id in sorted(set(product_ids))
    ]
    if not rows:
        return
    maker = postgresql_insert if tx.dialect.name == "postgresql" else sqlite_insert
    tx.execute(maker(accounts).values(rows).on_conflict_do_nothing())


def open_accounts_of_members(
    tx: Connection, *, tenant_id: str, member_ids: Sequence[str], currency: str, chunk: int = 2_000
) -> None:
    """`open_member_accounts` for many members at once (an import), a few thousand members a
    statement."""
    for start in range(0, len(member_ids), chunk):
        batch = WriteBatch()
        batch.insert(
            accounts,
            [
                row
                for member_id in member_ids[start : start + chunk]
                for row in _member_accounts(tenant_id, member_id, currency)
            ],
        )
        batch.flush(tx)


@dataclass(frozen=True)
class JournalEntry:
    """One journal transaction to be written; see `post_entries`."""

    kind: str
    ref_type: str
    ref_id: str
    items: Sequence[Posting]
    preapplied: frozenset[str] = frozenset()


def stage_entries(
    batch: WriteBatch, *, tenant_id: str, at: datetime, entries: Sequence[JournalEntry]
) -> list[str]:
    """Add balanced journal transactions to a batch, with the moves of the cached member
    balances they cause; returns their ids.

    `preapplied` names accounts whose cached balance the caller already moved with a guarded
    update (a withdrawal's conditional debit)."""
    journal_rows: list[dict[str, object]] = []
    posting_rows: list[dict[str, object]] = []
    deltas: dict[str, int] = defaultdict(int)
    for entry in entries:
        kept = check_balanced(entry.items)
        journal_id = new_id("jtx")
        journal_rows.append(
            {
                "tenant_id": tenant_id,
                "id": journal_id,
                "kind": entry.kind,
                "ref_type": entry.ref_type,
                "ref_id": entry.ref_id,
                "occurred_at": at,
            }
        )
        for p in kept:
            posting_rows.append(
                {
                    "tenant_id": tenant_id,
                    "id": new_id("pst"),
                    "transaction_id": journal_id,
                    "account_id": p.account_id,
                    "currency": p.currency,
                    "amount": p.amount,
                    "occurred_at": at,
                }
            )
            if has_cached_balance(p.account_id) and p.account_id not in entry.preapplied:
                deltas[p.account_id] += p.amount
    batch.insert(journal_transactions, journal_rows)
    batch.insert(postings, posting_rows)
    for account_id, delta in sorted(deltas.items()):  # fixed order: no lock cycles
        if delta:
            batch.update(
                accounts,
                {"tenant_id": tenant_id, "id": account_id},
                increments={"balance": delta},
            )
    return [str(row["id"]) for row in journal_rows]


def post_entries(
    tx: Connection, *, tenant_id: str, at: datetime, entries: Sequence[JournalEntry]
) -> list[str]:
    """Write balanced journal transactions and move the cached member balances."""
    batch = WriteBatch()
    ids = stage_entries(batch, tenant_id=tenant_id, at=at, entries=entries)
    batch.flush(tx)
    return ids


def post_transaction(
    tx: Connection,
    *,
    tenant_id: str,
    kind: str,
    ref_type: str,
    ref_id: str,
    at: datetime,
    items: Iterable[Posting],
    preapplied: frozenset[str] = frozenset(),
) -> str:
    """Write one balanced journal transaction."""
    entry = JournalEntry(kind, ref_type, ref_id, list(items), preapplied)
    return post_entries(tx, tenant_id=tenant_id, at=at, entries=[entry])[0]


def debit_if_covered(tx: Connection, *, tenant_id: str, account_id: str, amount: int) -> bool:
    """Take `amount` from a cached balance only if the balance covers it (one guarded UPDATE,
    so parallel requests can never overdraw)."""
    take(tx, Lock.ACCOUNTS)
    result = tx.execute(
        update(accounts)
        .where(
            accounts.c.tenant_id == tenant_id,
            accounts.c.id == account_id,
            accounts.c.balance >= amount,
        )
        .values(balance=accounts.c.balance - amount)
    )
    return result.rowcount == 1


def lock_balances(tx: Connection, *, tenant_id: str, account_ids: Sequence[str]) -> dict[str, int]:
    """Lock member accounts in id order and return their cached balances."""
    rows = lock_rows(tx, Lock.ACCOUNTS, accounts, tenant_id, account_ids, columns=("id", "balance"))
    return {r.id: r.balance for r in rows}


def member_balances(tx: Connection, *, tenant_id: str, member_id: str) -> dict[Purpose, int]:
    """The member's balances: the cached ones, and the frozen wallet from its postings."""
    ids = {member_account(member_id, p): p for p in CACHED_MEMBER_PURPOSES}
    rows = tx.execute(
        select(accounts.c.id, accounts.c.balance).where(
            accounts.c.tenant_id == tenant_id, accounts.c.id.in_(list(ids))
        )
    ).all()
    balances = {ids[r.id]: r.balance for r in rows}
    balances[Purpose.WALLET_PENDING] = account_balance_from_postings(
        tx, tenant_id=tenant_id, account_id=member_account(member_id, Purpose.WALLET_PENDING)
    )
    return balances


def account_balance_from_postings(tx: Connection, *, tenant_id: str, account_id: str) -> int:
    total = tx.execute(
        select(func.coalesce(func.sum(postings.c.amount), 0)).where(
            postings.c.tenant_id == tenant_id, postings.c.account_id == account_id
        )
    ).scalar_one()
    return int(total)


def find_balance_mismatches(tx: Connection, *, tenant_id: str) -> list[dict[str, int | str]]:
    """Cached balances that disagree with the sum of their postings (should be none)."""
    summed = (
        select(postings.c.account_id, func.sum(postings.c.amount).label("total"))
        .where(postings.c.tenant_id == tenant_id)
        .group_by(postings.c.account_id)
        .subquery()
    )
    rows = tx.execute(
        select(accounts.c.id, accounts.c.balance, func.coalesce(summed.c.total, 0).label("total"))
        .select_from(accounts.outerjoin(summed, summed.c.account_id == accounts.c.id))
        .where(
            accounts.c.tenant_id == tenant_id,
            accounts.c.tracks_balance.is_(True),
            accounts.c.balance != func.coalesce(summed.c.total, 0),
        )
    ).all()
    return [{"account_id": r.id, "cached": r.balance, "postings": int(r.total)} for r in rows]


def unbalanced_transactions(tx: Connection, *, tenant_id: str) -> list[str]:
    """Journal transactions whose postings do not sum to zero per currency (should be none)."""
    rows = tx.execute(
        select(postings.c.transaction_id)
        .where(postings.c.tenant_id == tenant_id)
        .group_by(postings.c.transaction_id, postings.c.currency)
        .having(func.sum(postings.c.amount) != 0)
    ).all()
    return sorted({r.transaction_id for r in rows})


def brand_balance(tx: Connection, *, tenant_id: str, purpose: Purpose) -> int:
    return account_balance_from_postings(tx, tenant_id=tenant_id, account_id=brand_account(purpose))


def member_account_sql(member_id: ColumnElement[str], purpose: Purpose) -> ColumnElement[str]:
    """`member_account` as a SQL expression, for set-based postings."""
    return member_id.concat(MEMBER_SUFFIXES[purpose])


def negative_pending_wallets(tx: Connection, *, tenant_id: str) -> list[dict[str, int | str]]:
    """Frozen wallets whose postings sum below zero (should be none; the database refuses a
    posting that would make one)."""
    pending = "%" + MEMBER_SUFFIXES[Purpose.WALLET_PENDING]
    rows = tx.execute(
        select(postings.c.account_id, func.sum(postings.c.amount).label("total"))
        .where(postings.c.tenant_id == tenant_id, postings.c.account_id.like(pending))
        .group_by(postings.c.account_id)
        .having(func.sum(postings.c.amount) < 0)
        .order_by(postings.c.account_id)
    ).all()
    return [{"account_id": r.account_id, "postings": int(r.total)} for r in rows]


def verify_ledger_of(ctx: Ctx) -> dict[str, Any]:
    """Cached balances against postings, every transaction's zero sum, and no frozen wallet
    below zero: `ok` when all three hold."""
    with ctx.db.read() as tx:
        mismatches = find_balance_mismatches(tx, tenant_id=ctx.tenant_id)
        unbalanced = unbalanced_transactions(tx, tenant_id=ctx.tenant_id)
        negative = negative_pending_wallets(tx, tenant_id=ctx.tenant_id)
    return {
        "ok": not mismatches and not unbalanced and not negative,
        "mismatches": mismatches,
        "unbalanced": unbalanced,
        "negative_pending": negative,
    }
