"""The facts a tier's criteria read, for a set of members in one statement, and the criteria
compiled into SQL so that a batch reads only the members whose tier may change.

The facts come from the tables of domains above this one (a payment, in `shequn.orders`,
evaluates its buyer in its own transaction, so the tier engine sits below it): they are named
here by their names, columns included, and a test checks them against the tables as declared.
One statement serves one member (a payment, an evaluation asked for) and a range of thousands
(the nightly batch): per kind of fact, one grouped subquery over the members of the set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    and_,
    case,
    column,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    table,
)

from shequn.db import UTCDateTime
from shequn.events.tables import events
from shequn.tiers.rules import (
    FULL_BP,
    Atom,
    Criterion,
    FactKey,
    Group,
    Kind,
    Standing,
    TierSpec,
    buffered,
    fact_keys,
)

# Tables of other domains, by name (`shequn.members.tables`, `shequn.orders.tables`).
members = table(
    "members",
    column("tenant_id", String),
    column("id", String),
    column("tier_id", String),
    column("referrer_id", String),
    column("paid_order_count", Integer),
    column("team_count", Integer),
    column("created_at", UTCDateTime()),
    column("updated_at", UTCDateTime()),
)
orders = table(
    "orders",
    column("tenant_id", String),
    column("id", String),
    column("buyer_id", String),
    column("status", String),
    column("paid_at", UTCDateTime()),
    column("paid_fen", BigInteger),
    column("refunded_fen", BigInteger),
)
order_lines = table(
    "order_lines",
    column("tenant_id", String),
    column("order_id", String),
    column("sku", String),
    column("line_total_fen", BigInteger),
    column("refunded_fen", BigInteger),
)

TIER_CHANGED = "MemberTierChanged"
MEMBER_SUBJECT = "member"


@dataclass(frozen=True)
class MemberSet:
    """Members by id, or the members whose ids are above `after` and at most `upto` (None:
    unbounded), as the batch walks them in id order."""

    ids: tuple[str, ...] | None = None
    after: str | None = None
    upto: str | None = None

    def on(self, col: Any) -> ColumnElement[bool]:
        if self.ids is not None:
            return col.in_(list(self.ids)) if self.ids else false()
        parts = []
        if self.after is not None:
            parts.append(col > self.after)
        if self.upto is not None:
            parts.append(col <= self.upto)
        return and_(*parts) if parts else literal(True)


def _label(index: int) -> str:
    return f"f{index}"


@dataclass(frozen=True)
class FactsQuery:
    """The statement and how to read it: which label holds which fact."""

    statement: Select[Any]
    keys: tuple[FactKey, ...]
    values: Mapping[FactKey, ColumnElement[Any]]  # each fact as the statement computes it
    held_since: ColumnElement[Any] | None


def facts_query(
    *,
    tenant_id: str,
    keys: set[FactKey],
    member_set: MemberSet,
    now: datetime,
    with_held_since: bool = False,
) -> FactsQuery:
    """One row per member of the set: its id, its tier, and one column per fact (0 when it has
    none), plus since when it holds its tier if asked (its last tier change, or its creation)."""
    ordered = tuple(sorted(keys, key=lambda k: (k.kind.value, k.window_days or 0, k.arg or "")))
    index = {k: i for i, k in enumerate(ordered)}
    m = members
    joins: list[tuple[Any, ColumnElement[bool]]] = []
    values: dict[FactKey, ColumnElement[Any]] = {}

    def since(key: FactKey) -> datetime | None:
        return None if key.window_days is None else now - timedelta(days=key.window_days)

    order_keys = [k for k in ordered if k.kind in (Kind.SPEND, Kind.SINGLE_ORDER)]
    if order_keys:
        o = orders
        net = o.c.paid_fen - o.c.refunded_fen
        cols = []
        for key in order_keys:
            start = since(key)
            if key.kind is Kind.SPEND:
                amount = net if start is None else case((o.c.paid_at >= start, net), else_=0)
                cols.append(func.sum(amount).label(_label(index[key])))
            else:
                biggest = net if start is None else case((o.c.paid_at >= start, net), else_=None)
                cols.append(func.max(biggest).label(_label(index[key])))
        where = [o.c.tenant_id == tenant_id, o.c.paid_at.is_not(None), member_set.on(o.c.buyer_id)]
        starts = [since(k) for k in order_keys]
        if all(s is not None for s in starts):
            where.append(o.c.paid_at >= min(s for s in starts if s is not None))
        spent = (
            select(o.c.buyer_id.label("member_id"), *cols)
            .where(*where)
            .group_by(o.c.buyer_id)
            .subquery("spent")
        )
        joins.append((spent, spent.c.member_id == m.c.id))
        for key in order_keys:
            values[key] = func.coalesce(spent.c[_label(index[key])], 0)

    bought_keys = [k for k in ordered if k.kind is Kind.BOUGHT]
    if bought_keys:
        o, ln = orders, order_lines
        cols = []
        for key in bought_keys:
            start = since(key)
            hit = (
                ln.c.sku == key.arg
                if start is None
                else and_(ln.c.sku == key.arg, o.c.paid_at >= start)
            )
            cols.append(func.max(case((hit, 1), else_=0)).label(_label(index[key])))
        lines = (
            select(o.c.buyer_id.label("member_id"), *cols)
            .select_from(ln.join(o, and_(o.c.tenant_id == ln.c.tenant_id, o.c.id == ln.c.order_id)))
            .where(
                ln.c.tenant_id == tenant_id,
                ln.c.sku.in_(sorted({k.arg for k in bought_keys if k.arg})),
                (ln.c.refunded_fen < ln.c.line_total_fen) | (ln.c.line_total_fen == 0),
                o.c.paid_at.is_not(None),
                o.c.status != "cancelled",
                member_set.on(o.c.buyer_id),
            )
            .group_by(o.c.buyer_id)
            .subquery("bought")
        )
        joins.append((lines, lines.c.member_id == m.c.id))
        for key in bought_keys:
            values[key] = func.coalesce(lines.c[_label(index[key])], 0)

    direct_keys = [k for k in ordered if k.kind is Kind.DIRECT_CUSTOMERS]
    if direct_keys:
        r = members.alias("referred")
        direct = (
            select(r.c.referrer_id.label("member_id"), func.count().label("direct"))
            .where(
                r.c.tenant_id == tenant_id,
                r.c.paid_order_count > 0,
                member_set.on(r.c.referrer_id),
            )
            .group_by(r.c.referrer_id)
            .subquery("direct")
        )
        joins.append((direct, direct.c.member_id == m.c.id))
        for key in direct_keys:
            values[key] = func.coalesce(direct.c.direct, 0)

    fact_keys_ = [k for k in ordered if k.kind is Kind.FACT]
    if fact_keys_:
        e = events
        cols = []
        for key in fact_keys_:
            start = since(key)
            hit = (
                e.c.type == key.arg
                if start is None
                else and_(e.c.type == key.arg, e.c.occurred_at >= start)
            )
            cols.append(func.sum(case((hit, 1), else_=0)).label(_label(index[key])))
        noted = (
            select(e.c.subject_id.label("member_id"), *cols)
            .where(
                e.c.tenant_id == tenant_id,
                e.c.subject_type == MEMBER_SUBJECT,
                e.c.type.in_(sorted({k.arg for k in fact_keys_ if k.arg})),
                member_set.on(e.c.subject_id),
            )
            .group_by(e.c.subject_id)
            .subquery("noted")
        )
        joins.append((noted, noted.c.member_id == m.c.id))
        for key in fact_keys_:
            values[key] = func.coalesce(noted.c[_label(index[key])], 0)

    for key in ordered:
        if key.kind is Kind.TEAM_SIZE:
            values[key] = m.c.team_count

    held: ColumnElement[Any] | None = None
    if with_held_since:
        e = events
        changed = (
            select(e.c.subject_id.label("member_id"), func.max(e.c.occurred_at).label("at"))
            .where(
                e.c.tenant_id == tenant_id,
                e.c.subject_type == MEMBER_SUBJECT,
                e.c.type == TIER_CHANGED,
                member_set.on(e.c.subject_id),
            )
            .group_by(e.c.subject_id)
            .subquery("changed")
        )
        joins.append((changed, changed.c.member_id == m.c.id))
        held = func.coalesce(changed.c.at, m.c.created_at)

    source: Any = m
    for sub, on in joins:
        source = source.outerjoin(sub, on)
    statement = (
        select(
            m.c.id,
            m.c.tier_id,
            *[values[k].label(_label(index[k])) for k in ordered],
            *([] if held is None else [held.label("held_since")]),
        )
        .select_from(source)
        .where(m.c.tenant_id == tenant_id, member_set.on(m.c.id))
        .order_by(m.c.id)
    )
    return FactsQuery(statement, ordered, values, held)


def standing_of(row: Any, query: FactsQuery) -> Standing:
    mapping = row._mapping
    return Standing(
        member_id=mapping["id"],
        tier_id=mapping["tier_id"],
        facts={k: int(mapping[_label(i)] or 0) for i, k in enumerate(query.keys)},
        held_since=mapping.get("held_since"),
    )


def read_standings(
    tx: Connection,
    *,
    tenant_id: str,
    tier_list: Sequence[TierSpec],
    member_set: MemberSet,
    now: datetime,
    candidates_only: bool = False,
) -> list[Standing]:
    """The standing of every member of the set (with `candidates_only`, of those whose tier
    the criteria may change: the SQL form of `shequn.tiers.rules.decide`, which then decides)."""
    keys = fact_keys(t.criteria for t in tier_list)
    demoting = [t for t in tier_list if t.demotes]
    query = facts_query(
        tenant_id=tenant_id,
        keys=keys,
        member_set=member_set,
        now=now,
        with_held_since=bool(demoting),
    )
    statement = query.statement
    if candidates_only:
        statement = statement.where(may_change(tier_list, query, now))
    return [standing_of(row, query) for row in tx.execute(statement)]


def sql_met(
    tree: Criterion, values: Mapping[FactKey, ColumnElement[Any]], buffer_bp: int = FULL_BP
) -> ColumnElement[bool]:
    """The tree as a SQL condition over the facts as `facts_query` computes them: the same
    test as `shequn.tiers.rules.is_met`."""
    if isinstance(tree, Atom):
        return values[tree.key] >= buffered(tree.minimum, buffer_bp)
    assert isinstance(tree, Group)
    parts = [sql_met(item, values, buffer_bp) for item in tree.items]
    return and_(*parts) if tree.kind is Kind.ALL_OF else or_(*parts)


def may_change(
    tier_list: Sequence[TierSpec], query: FactsQuery, now: datetime
) -> ColumnElement[bool]:
    """Whether a member's tier may change: a tier above its own is met, or it holds a tier
    that demotes, for longer than the hold, and no longer meets it within the buffer."""
    m = members
    ranked = [t for t in tier_list if t.criteria is not None]
    if not ranked:
        return false()
    rank = case({t.id: t.rank for t in tier_list}, value=m.c.tier_id, else_=-1)
    rank = case((m.c.tier_id.is_(None), -1), else_=rank)
    up = [and_(rank < t.rank, sql_met(t.criteria, query.values)) for t in ranked if t.criteria]
    down = []
    for tier in tier_list:
        if not tier.demotes or tier.criteria is None:
            continue
        assert query.held_since is not None
        cutoff = now - timedelta(days=tier.demotion.hold_days)
        down.append(
            and_(
                m.c.tier_id == tier.id,
                not_(sql_met(tier.criteria, query.values, tier.demotion.buffer_bp)),
                query.held_since <= cutoff,
            )
        )
    return or_(*up, *down)
