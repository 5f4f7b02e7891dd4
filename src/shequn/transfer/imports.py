"""Importing members, referral ties and historical orders from CSV files.

One use case per file: read and check every row (`shequn.transfer.rules`), then, if no row is
bad and it is not a dry run, write everything in one transaction with set-based statements of a
few thousand rows each. A file with one bad row imports nothing; the report names every bad row.
Importing is idempotent on external ids: a row whose member or order the tenant has already is
matched, not made again, so importing the same file twice changes nothing the second time.

Members are written as registering them one by one would leave them (the same rows of the
closure table, chain columns, team counts, accounts, bindings and events; a test compares),
with the binding source `import`. Historical paid orders add to their buyer's purchase facts
and to the ledger's sales, and pay no commission (see docs/import-export.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, func, select
from sqlalchemy.exc import IntegrityError

from shequn.batch import WriteBatch
from shequn.catalog.tables import products
from shequn.context import Ctx
from shequn.errors import InvalidInput
from shequn.events.service import Event, record_event, stage_events
from shequn.events.tables import events
from shequn.ids import is_id, new_id
from shequn.ledger.rules import Posting, Purpose, brand_account, system_account
from shequn.ledger.service import JournalEntry, open_accounts_of_members, stage_entries
from shequn.ledger.tables import accounts, journal_transactions, postings
from shequn.locks import lock_referral_tree
from shequn.members.repo import (
    BULK_ROWS,
    forget_buyer,
    insert_members,
    lock_members,
    set_purchase_facts,
)
from shequn.members.rules import PurchaseFacts
from shequn.members.tables import member_tags, members
from shequn.orders.rules import OrderStatus
from shequn.orders.tables import order_lines, orders, payments
from shequn.referrals.rules import BindingSource
from shequn.referrals.tables import referral_bindings, referral_paths
from shequn.referrals.tree import plan_ties, write_ties
from shequn.tenancy.repo import load_settings
from shequn.tiers.tables import tiers
from shequn.transfer.rules import (
    IMPORT_COLUMNS,
    PAID_STATUSES,
    ImportKind,
    KnownMember,
    KnownProduct,
    MemberFacts,
    MemberPlan,
    MemberRow,
    OrderFacts,
    OrderPlan,
    OrderRow,
    PlannedOrder,
    Record,
    ReferralPlan,
    ReferralRow,
    RowError,
    check_members,
    check_orders,
    check_referrals,
    facts_with_orders,
    member_key,
    order_key,
    parse_members,
    parse_orders,
    parse_referrals,
    read_records,
)

# (stage, done, total): "read" and "check" count rows, "write" counts steps.
Progress = Callable[[str, int, int], None]
PARSE_CHUNK = 2_000  # rows read between two reports of progress
LOOKUP_CHUNK = 500  # keys per lookup statement (SQLite takes a few hundred parameters at ease)
SOURCE = BindingSource.IMPORT.value
ANALYZE_AFTER = 10_000  # rows written, past which PostgreSQL's statistics are brought up to date


def _quiet(stage: str, done: int, total: int) -> None:
    return None


def import_file(
    ctx: Ctx,
    *,
    kind: str,
    data: bytes,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Check a CSV file of `kind` (members, orders, referrals) and, unless `dry_run` or a row
    is bad, import it. Returns the report: rows, valid rows, every error (line, field, code,
    params), what the file would import (`planned`) and what it did (`imported`)."""
    try:
        parsed_kind = ImportKind(kind)
    except ValueError:
        raise InvalidInput("import_kind_invalid", kind=kind) from None
    report = progress or _quiet
    records, errors = read_records(data, IMPORT_COLUMNS[parsed_kind])
    with ctx.db.read() as tx:
        time_zone = load_settings(tx, ctx.tenant_id).time_zone
    now = ctx.clock.now()

    def parse(records: Sequence[Record]) -> tuple[list[Any], list[RowError]]:
        if parsed_kind is ImportKind.MEMBERS:
            return parse_members(records, time_zone=time_zone, now=now)
        if parsed_kind is ImportKind.ORDERS:
            return parse_orders(records, time_zone=time_zone, now=now)
        return parse_referrals(records)

    rows: list[Any] = []
    report("read", 0, len(records))
    for start in range(0, len(records), PARSE_CHUNK):
        parsed, field_errors = parse(records[start : start + PARSE_CHUNK])
        rows += parsed
        errors += field_errors
        report("read", min(start + PARSE_CHUNK, len(records)), len(records))
    importer = _IMPORTERS[parsed_kind](ctx, rows, now)
    for attempt in range(2):
        try:
            return _run(
                ctx,
                importer,
                records_count=len(records),
                errors=errors,
                dry_run=dry_run,
                progress=report,
                kind=parsed_kind,
            )
        except IntegrityError:
            # Another writer took a phone or an external id between the checks and the write
            # (a profile change takes no tree lock): check again, which names it.
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


class _Importer:
    """The part of an import that depends on its kind."""

    tables: tuple[Table, ...] = ()  # the tables it writes most to

    def __init__(self, ctx: Ctx, rows: Sequence[Any], now: datetime) -> None:
        self.ctx = ctx
        self.rows = rows
        self.now = now

    def locks(self, tx: Connection) -> None:
        """Take the locks the write needs first (before anything is read for the checks)."""

    def check(self, tx: Connection) -> tuple[dict[str, int], list[RowError]]:
        """The counts the file would import, and the errors found against the tenant."""
        raise NotImplementedError

    def write(self, tx: Connection, progress: Progress) -> None:
        raise NotImplementedError


def _run(
    ctx: Ctx,
    importer: _Importer,
    *,
    records_count: int,
    errors: list[RowError],
    dry_run: bool,
    progress: Progress,
    kind: ImportKind,
) -> dict[str, Any]:
    def answer(found: list[RowError], planned: dict[str, int], done: bool) -> dict[str, Any]:
        found = sorted(found, key=lambda e: (e.line, e.field or "", e.code))
        bad_lines = {e.line for e in found}
        return {
            "kind": kind.value,
            "dry_run": dry_run,
            "rows": records_count,
            "valid": records_count - len(bad_lines & importer_lines),
            "errors": [
                {"line": e.line, "field": e.field, "code": e.code, "params": dict(e.params)}
                for e in found
            ],
            "planned": planned,
            "imported": planned if done else dict.fromkeys(planned, 0),
        }

    importer_lines = {row.line for row in importer.rows}
    progress("check", 0, records_count)
    if dry_run:
        with ctx.db.read() as tx:
            planned, found = importer.check(tx)
        progress("check", records_count, records_count)
        return answer(errors + found, planned, False)
    with ctx.db.transaction() as tx:
        importer.locks(tx)
        planned, found = importer.check(tx)
        progress("check", records_count, records_count)
        if errors or found:
            return answer(errors + found, planned, False)
        written = sum(count for name, count in planned.items() if name != "matched")
        if written:
            importer.write(tx, progress)  # a file that only matches writes nothing, no event
    if ctx.db.is_postgres and written >= ANALYZE_AFTER:
        # Statistics of tables that just grew a lot are stale until autovacuum comes by; the
        # planner would meanwhile take them for small (and scan them for every lookup).
        with ctx.db.autocommit() as conn:
            conn.exec_driver_sql("ANALYZE " + ", ".join(t.name for t in importer.tables))
    return answer([], planned, True)


def _chunks(items: Sequence[str], size: int = LOOKUP_CHUNK) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# --- what the tenant has -----------------------------------------------------------------------


def known_members(tx: Connection, tenant_id: str, keys: Iterable[str]) -> dict[str, KnownMember]:
    """The tenant's members a file names, by external id and by id (each taken for the top of
    its own tree: `with_roots` finds the real tops of the ones that need it)."""
    wanted = sorted(set(keys))
    ids = [k for k in wanted if is_id(k, "mem")]
    referrer = members.alias("referrer")
    query = select(
        members.c.id,
        members.c.external_id,
        members.c.phone,
        members.c.referrer_id,
        referrer.c.external_id.label("referrer_external_id"),
    ).select_from(
        members.outerjoin(
            referrer,
            and_(
                referrer.c.tenant_id == members.c.tenant_id, referrer.c.id == members.c.referrer_id
            ),
        )
    )
    found: dict[str, Any] = {}
    for column, values in ((members.c.id, ids), (members.c.external_id, wanted)):
        for chunk in _chunks(values):
            for row in tx.execute(query.where(members.c.tenant_id == tenant_id, column.in_(chunk))):
                found[row.id] = row
    out: dict[str, KnownMember] = {}
    for row in found.values():
        out[row.id] = KnownMember(
            id=row.id,
            key=member_key(row.id, row.external_id),
            phone=row.phone,
            referrer_id=row.referrer_id,
            referrer_key=(
                member_key(row.referrer_id, row.referrer_external_id)
                if row.referrer_id is not None
                else None
            ),
            root_id=row.id,
        )
    for row in found.values():
        if row.external_id is not None:
            out[row.external_id] = out[row.id]
    return out


def with_roots(
    tx: Connection, tenant_id: str, known: Mapping[str, KnownMember], ids: Iterable[str]
) -> dict[str, KnownMember]:
    """`known` with the top of the tree of each of `ids` that is bound (its deepest path);
    the cycle check needs them for the referrers of members who were there before."""
    bound = sorted({i for i in ids if i in known and known[i].referrer_id is not None})
    p, q = referral_paths, referral_paths.alias("q")
    deepest = (
        select(func.max(q.c.depth))
        .where(q.c.tenant_id == p.c.tenant_id, q.c.descendant_id == p.c.descendant_id)
        .scalar_subquery()
    )
    roots: dict[str, str] = {}
    for chunk in _chunks(bound):
        for path in tx.execute(
            select(p.c.descendant_id, p.c.ancestor_id).where(
                p.c.tenant_id == tenant_id, p.c.descendant_id.in_(chunk), p.c.depth == deepest
            )
        ):
            roots[path.descendant_id] = path.ancestor_id
    return {
        key: replace(member, root_id=roots[member.id]) if member.id in roots else member
        for key, member in known.items()
    }


def _phone_owners(tx: Connection, tenant_id: str, phones: Iterable[str]) -> dict[str, str]:
    owners: dict[str, str] = {}
    for chunk in _chunks(sorted(set(phones))):
        for row in tx.execute(
            select(members.c.phone, members.c.id).where(
                members.c.tenant_id == tenant_id, members.c.phone.in_(chunk)
            )
        ):
            owners[row.phone] = row.id
    return owners


def _tiers(tx: Connection, tenant_id: str) -> dict[str, str]:
    rows = tx.execute(select(tiers.c.id, tiers.c.name).where(tiers.c.tenant_id == tenant_id))
    by: dict[str, str] = {}
    for row in rows:
        by[row.id] = row.id
        by.setdefault(row.name, row.id)
    return by


# --- members -----------------------------------------------------------------------------------


class _MembersImport(_Importer):
    rows: Sequence[MemberRow]
    plan: MemberPlan
    tables = (members, member_tags, referral_paths, referral_bindings, accounts, events)

    def locks(self, tx: Connection) -> None:
        lock_referral_tree(tx, self.ctx.tenant_id)

    def check(self, tx: Connection) -> tuple[dict[str, int], list[RowError]]:
        tenant_id = self.ctx.tenant_id
        keys = [k for r in self.rows for k in (r.external_id, r.referrer) if k is not None]
        known = known_members(tx, tenant_id, keys)
        # A tie can close a loop only through a member who was there before and is unbound.
        if any(
            r.referrer is not None
            and r.external_id in known
            and known[r.external_id].referrer_id is None
            for r in self.rows
        ):
            referrers = [known[r.referrer].id for r in self.rows if r.referrer in known]
            known = with_roots(tx, tenant_id, known, referrers)
        facts = MemberFacts(
            members=known,
            phone_owners=_phone_owners(tx, tenant_id, [r.phone for r in self.rows if r.phone]),
            tiers=_tiers(tx, tenant_id),
        )
        self.plan, errors = check_members(self.rows, facts)
        planned = {
            "created": len(self.plan.create),
            "matched": self.plan.matched,
            "bound": len(self.plan.referrer_of),
        }
        return planned, errors

    def write(self, tx: Connection, progress: Progress) -> None:
        ctx, plan, now = self.ctx, self.plan, self.now
        tenant_id = ctx.tenant_id
        steps = 5
        settings = load_settings(tx, tenant_id)
        ids = {row.external_id: new_id("mem") for row in plan.create}

        def member_id(node: str) -> str:
            return ids.get(node, node)  # new members by their external id, others by id

        referrer_of = {member_id(m): member_id(r) for m, r in plan.referrer_of.items()}
        ties = plan_ties(tx, tenant_id, new_members=list(ids.values()), referrer_of=referrer_of)
        progress("write", 1, steps)
        rows: list[dict[str, Any]] = []
        tags: list[dict[str, str]] = []
        for row in plan.create:
            assert row.external_id is not None
            assert row.name is not None
            new = ids[row.external_id]
            referrer_id, ancestor_2, ancestor_3 = ties.chain(new)
            direct, team = ties.counts(new)
            rows.append(
                {
                    "tenant_id": tenant_id,
                    "id": new,
                    "name": row.name,
                    "phone": row.phone,
                    "external_id": row.external_id,
                    "tier_id": plan.tier_of.get(row.line),
                    "referrer_id": referrer_id,
                    "ancestor_2": ancestor_2,
                    "ancestor_3": ancestor_3,
                    "binding_source": SOURCE if referrer_id is not None else None,
                    "bound_at": now if referrer_id is not None else None,
                    "direct_count": direct,
                    "team_count": team,
                    "created_at": row.registered_at or now,
                    "updated_at": now,
                }
            )
            tags += [{"tenant_id": tenant_id, "member_id": new, "tag": t} for t in row.tags]
        insert_members(tx, rows, tags)
        progress("write", 2, steps)
        _record_all(
            tx,
            ctx,
            now,
            [
                Event(
                    "MemberRegistered",
                    "member",
                    r["id"],
                    {"named_referrer_id": r["referrer_id"], "source": SOURCE},
                )
                for r in rows
            ],
        )
        write_ties(tx, ties, tenant_id=tenant_id, source=SOURCE, actor=ctx.actor, at=now)
        progress("write", 3, steps)
        open_accounts_of_members(
            tx, tenant_id=tenant_id, member_ids=list(ids.values()), currency=settings.currency
        )
        progress("write", 4, steps)
        record_event(
            tx,
            tenant_id=tenant_id,
            actor=ctx.actor,
            at=now,
            type="MembersImported",
            subject_type="tenant",
            subject_id=tenant_id,
            payload={
                "rows": len(self.rows),
                "created": len(plan.create),
                "matched": plan.matched,
                "bound": len(plan.referrer_of),
            },
        )
        progress("write", steps, steps)


def _record_all(tx: Connection, ctx: Ctx, at: datetime, items: Sequence[Event]) -> None:
    for start in range(0, len(items), BULK_ROWS):
        batch = WriteBatch()
        stage_events(
            batch,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=at,
            items=items[start : start + BULK_ROWS],
        )
        batch.flush(tx)


# --- referral ties -----------------------------------------------------------------------------


class _ReferralsImport(_Importer):
    rows: Sequence[ReferralRow]
    plan: ReferralPlan
    tables = (members, referral_paths, referral_bindings, events)

    def locks(self, tx: Connection) -> None:
        lock_referral_tree(tx, self.ctx.tenant_id)

    def check(self, tx: Connection) -> tuple[dict[str, int], list[RowError]]:
        keys = [k for r in self.rows for k in (r.member, r.referrer) if k is not None]
        known = known_members(tx, self.ctx.tenant_id, keys)
        referrers = [known[r.referrer].id for r in self.rows if r.referrer in known]
        facts = MemberFacts(members=with_roots(tx, self.ctx.tenant_id, known, referrers))
        self.plan, errors = check_referrals(self.rows, facts)
        return {"bound": len(self.plan.referrer_of), "matched": self.plan.matched}, errors

    def write(self, tx: Connection, progress: Progress) -> None:
        ctx, tenant_id = self.ctx, self.ctx.tenant_id
        ties = plan_ties(tx, tenant_id, new_members=[], referrer_of=self.plan.referrer_of)
        progress("write", 1, 2)
        write_ties(tx, ties, tenant_id=tenant_id, source=SOURCE, actor=ctx.actor, at=self.now)
        record_event(
            tx,
            tenant_id=tenant_id,
            actor=ctx.actor,
            at=self.now,
            type="ReferralsImported",
            subject_type="tenant",
            subject_id=tenant_id,
            payload={
                "rows": len(self.rows),
                "bound": len(self.plan.referrer_of),
                "matched": self.plan.matched,
            },
        )
        progress("write", 2, 2)


# --- orders ------------------------------------------------------------------------------------


def _order_facts(tx: Connection, tenant_id: str, rows: Sequence[OrderRow]) -> OrderFacts:
    externals = sorted({r.external_order_id for r in rows if r.external_order_id is not None})
    imported: set[str] = set()
    for chunk in _chunks(externals):
        for row in tx.execute(
            select(orders.c.idempotency_key).where(
                orders.c.tenant_id == tenant_id,
                orders.c.idempotency_key.in_([order_key(e) for e in chunk]),
            )
        ):
            imported.add(row.idempotency_key[len(order_key("")) :])
    for chunk in _chunks([e for e in externals if is_id(e, "ord")]):
        for row in tx.execute(
            select(orders.c.id).where(orders.c.tenant_id == tenant_id, orders.c.id.in_(chunk))
        ):
            imported.add(row.id)
    buyers = known_members(tx, tenant_id, [r.buyer for r in rows if r.buyer is not None])
    skus = sorted({r.sku for r in rows if r.sku is not None})
    found: dict[str, KnownProduct] = {}
    for chunk in _chunks(skus):
        for row in tx.execute(
            select(products).where(products.c.tenant_id == tenant_id, products.c.sku.in_(chunk))
        ):
            found[row.sku] = KnownProduct(
                id=row.id,
                sku=row.sku,
                name=row.name,
                price_fen=row.price_fen,
                ladder_role=row.ladder_role,
                category=row.category,
                active=row.active,
            )
    return OrderFacts(
        orders=frozenset(imported),
        buyers={key: known.id for key, known in buyers.items()},
        products=found,
    )


class _OrdersImport(_Importer):
    rows: Sequence[OrderRow]
    plan: OrderPlan
    tables = (orders, order_lines, payments, journal_transactions, postings, members)

    def check(self, tx: Connection) -> tuple[dict[str, int], list[RowError]]:
        self.plan, errors = check_orders(self.rows, _order_facts(tx, self.ctx.tenant_id, self.rows))
        planned = {
            "created": len(self.plan.create),
            "lines": sum(len(o.lines) for o in self.plan.create),
            "matched": self.plan.matched,
        }
        return planned, errors

    def write(self, tx: Connection, progress: Progress) -> None:
        ctx, now, tenant_id = self.ctx, self.now, self.ctx.tenant_id
        planned = self.plan.create
        settings = load_settings(tx, tenant_id)
        buyer_ids = sorted({o.buyer_id for o in planned})
        # The buyers' rows first (they are written last, with what their orders add).
        facts: dict[str, PurchaseFacts] = {}
        tier_of: dict[str, str | None] = {}
        for chunk in _chunks(buyer_ids, BULK_ROWS):
            lock_members(tx, tenant_id, chunk)
            for row in tx.execute(
                select(members).where(members.c.tenant_id == tenant_id, members.c.id.in_(chunk))
            ):
                tier_of[row.id] = row.tier_id
                facts[row.id] = PurchaseFacts(
                    paid_order_count=row.paid_order_count,
                    lifetime_order_count=row.lifetime_order_count,
                    paid_total_fen=row.paid_total_fen,
                    max_order_fen=row.max_order_fen,
                    first_paid_at=row.first_paid_at,
                    last_paid_at=row.last_paid_at,
                )
        paid_by_buyer: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
        for start in range(0, len(planned), BULK_ROWS // 5):
            batch = WriteBatch()
            for order in planned[start : start + BULK_ROWS // 5]:
                _stage_order(
                    batch, order, tenant_id, tier_of[order.buyer_id], now, settings.currency
                )
                if order.status in PAID_STATUSES:
                    assert order.paid_at is not None
                    paid_by_buyer[order.buyer_id].append((order.total_fen, order.paid_at))
            batch.flush(tx)
            progress("write", min(start + BULK_ROWS // 5, len(planned)), len(planned) + 1)
        set_purchase_facts(
            tx,
            tenant_id,
            {b: facts_with_orders(facts[b], paid) for b, paid in paid_by_buyer.items()},
            now,
        )
        for buyer_id in paid_by_buyer:
            forget_buyer(ctx.snapshot, tenant_id, buyer_id)
        record_event(
            tx,
            tenant_id=tenant_id,
            actor=ctx.actor,
            at=now,
            type="OrdersImported",
            subject_type="tenant",
            subject_id=tenant_id,
            payload={
                "rows": len(self.rows),
                "created": len(planned),
                "matched": self.plan.matched,
                "paid": sum(len(p) for p in paid_by_buyer.values()),
                "paid_total_fen": sum(a for p in paid_by_buyer.values() for a, _ in p),
            },
        )
        progress("write", len(planned) + 1, len(planned) + 1)


def _stage_order(
    batch: WriteBatch,
    order: PlannedOrder,
    tenant_id: str,
    tier_id: str | None,
    now: datetime,
    currency: str,
) -> None:
    """An order as the file tells it: its row, its lines, and, paid, its payment and the sale
    in the ledger (dated when it was paid). No commission: it was earned, or not, elsewhere."""
    order_id = new_id("ord")
    paid = order.status in PAID_STATUSES
    paid_at = order.paid_at if paid else None
    at = paid_at or now
    status = order.status
    shipped = status in (OrderStatus.SHIPPED, OrderStatus.COMPLETED, OrderStatus.CLOSED)
    completed = status in (OrderStatus.COMPLETED, OrderStatus.CLOSED)
    total = order.total_fen
    batch.insert(
        orders,
        [
            {
                "tenant_id": tenant_id,
                "id": order_id,
                "buyer_id": order.buyer_id,
                "status": status.value,
                "subtotal_fen": order.subtotal_fen,
                "discount_fen": order.subtotal_fen - total,
                "total_fen": total,
                "paid_fen": total if paid else 0,
                "refunded_fen": 0,
                "buyer_tier_id": tier_id,
                "attributed_sharer_id": None,
                "idempotency_key": order_key(order.external_order_id),
                "request_hash": None,
                "created_at": at,
                "paid_at": paid_at,
                "shipped_at": paid_at if shipped else None,
                "completed_at": paid_at if completed else None,
                "closed_at": paid_at if status is OrderStatus.CLOSED else None,
                "cancelled_at": now if status is OrderStatus.CANCELLED else None,
                "updated_at": now,
            }
        ],
    )
    batch.insert(
        order_lines,
        [
            {
                "tenant_id": tenant_id,
                "id": new_id("ol"),
                "order_id": order_id,
                "line_no": number,
                "product_id": line.product.id,
                "sku": line.product.sku,
                "name": line.product.name,
                "ladder_role": line.product.ladder_role,
                "category": line.product.category,
                "quantity": line.quantity,
                "list_price_fen": line.product.price_fen,
                "unit_price_fen": line.unit_price_fen,
                "line_total_fen": line.total_fen,
                "refunded_fen": 0,
            }
            for number, line in enumerate(order.lines, start=1)
        ],
    )
    if not paid or paid_at is None:
        return
    batch.insert(
        payments,
        [
            {
                "tenant_id": tenant_id,
                "id": new_id("pay"),
                "order_id": order_id,
                "provider_txn_id": order_key(order.external_order_id),
                "amount_fen": total,
                "created_at": paid_at,
            }
        ],
    )
    if total > 0:
        stage_entries(
            batch,
            tenant_id=tenant_id,
            at=paid_at,
            entries=[
                JournalEntry(
                    kind="payment_imported",
                    ref_type="order",
                    ref_id=order_id,
                    items=[
                        Posting(system_account(Purpose.PAYMENT_CLEARING), -total, currency),
                        Posting(brand_account(Purpose.SALES), total, currency),
                    ],
                )
            ],
        )


_IMPORTERS: dict[ImportKind, type[_Importer]] = {
    ImportKind.MEMBERS: _MembersImport,
    ImportKind.ORDERS: _OrdersImport,
    ImportKind.REFERRALS: _ReferralsImport,
}
