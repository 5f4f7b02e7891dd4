"""The one order in which use cases take their locks.

Two transactions that each hold a lock the other wants wait for each other forever; PostgreSQL
then aborts one of them (`deadlock detected`). That cannot happen when every transaction takes
its locks in the same order, so every use case takes them in the order of `Lock`: first the
referral tree of the tenant, then rows of the tables below, level by level, and within a level
the rows in order of their keys (one `SELECT … ORDER BY … FOR UPDATE`).

A transaction may take several locks of one level, and may skip levels; it may never take a
lock of a level above one it already holds. `take` checks this on every lock (on SQLite too,
where the locks themselves do nothing, so the whole test suite checks the order) and raises
`LockOrderError` when a use case breaks it.

An UPDATE locks the rows it changes. A use case that changes rows of a level by UPDATE first
calls `take` for that level (or locks them with `lock_rows`), so that the statement is
checked like any other lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import Any

from sqlalchemy import Connection, Table, select, text


class Lock(IntEnum):
    """Lock levels, in the order they are taken (numbered with gaps, so that a level can be
    put between two without renumbering)."""

    REFERRAL_TREE = 10  # advisory lock of a tenant's referral tree
    TENANT_SETTINGS = 20
    GROWTH_SWEEP = 25  # one run of the growth sweep of a tenant at a time
    COMMISSION_PLANS = 30
    TIERS = 40
    PRODUCTS = 50
    COMMUNITIES = 60
    STAFF_ACCOUNTS = 70
    GROUPS = 80
    # Community operations: a calendar event's seats, a program's participants, the members'
    # message budgets, complaint clusters and members' growth stages, after their groups.
    CALENDAR_EVENTS = 82
    PROGRAMS = 84
    MESSAGE_BUDGETS = 86
    COMPLAINTS = 87
    GROWTH_STAGES = 88
    COUPONS = 90
    REDEMPTION_ITEMS = 95
    ORDERS = 100  # an order and its lines
    STOCK_ORDER_REQUESTS = 105  # an agent's stock order awaiting payment, before the agent
    MEMBERS = 110
    WITHDRAWALS = 120
    HOLDS = 130  # commissions and rewards held for an operator's decision
    POINT_LOTS = 140
    STOCK = 150  # an agent's stock of a product
    ACCOUNTS = 160
    COMMISSION_LINES = 170


class LockOrderError(RuntimeError):
    """A use case asked for a lock above one it holds (a programming error)."""


_HELD = "shequn_lock_order"


def take(tx: Connection, level: Lock) -> None:
    """Record that the transaction on `tx` now takes a lock of `level`; refuse it if the
    transaction already holds a lock of a later level."""
    transaction = tx.get_transaction()
    if transaction is None:
        return  # autocommit: a statement's locks end with the statement
    held = tx.info.get(_HELD)
    if held is not None and held[0] is transaction:
        if level < held[1]:
            raise LockOrderError(
                f"{level.name} taken after {Lock(held[1]).name}: see shequn.locks for the order"
            )
        if level == held[1]:
            return
    tx.info[_HELD] = (transaction, level)


def lock_referral_tree(tx: Connection, tenant_id: str) -> None:
    """Serialise changes to one tenant's referral tree (two concurrent rebinds could otherwise
    close a cycle between them). SQLite's write lock already serialises."""
    take(tx, Lock.REFERRAL_TREE)
    if tx.dialect.name == "postgresql":
        tx.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"referral-tree:{tenant_id}"},
        )


def lock_rows(
    tx: Connection,
    level: Lock,
    table: Table,
    tenant_id: str,
    ids: Iterable[str],
    *,
    columns: Sequence[str] = ("id",),
    key: str = "id",
) -> list[Any]:
    """Lock the tenant's rows of `table` whose `key` is one of `ids`, in key order; returns
    them (the `columns` asked for)."""
    wanted = sorted(set(ids))
    take(tx, level)
    if not wanted:
        return []
    query = (
        select(*(table.c[c] for c in columns))
        .where(table.c.tenant_id == tenant_id, table.c[key].in_(wanted))
        .order_by(table.c[key])
        .with_for_update()
    )
    return list(tx.execute(query).all())
