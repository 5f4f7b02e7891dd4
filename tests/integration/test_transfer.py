"""Import and export on both databases: a bad file is reported row by row and changes nothing;
a clean one imports, and importing it again changes nothing; members imported in bulk are
exactly what registering them one by one makes; referral ties bind unbound members with their
teams and never move a tie; historical orders count for their buyers and the ledger and pay no
commission; every export in both formats and date ranges; and a round trip."""

from __future__ import annotations

import codecs
import csv
import io
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import select

from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.distribution.tables import commission_lines
from shequn.events.tables import events
from shequn.flows.registration import create_member
from shequn.flows.settings import update_settings
from shequn.flows.tiers import create_tier, list_tiers
from shequn.ledger.service import verify_ledger_of
from shequn.ledger.tables import accounts, journal_transactions
from shequn.members.tables import member_tags, members
from shequn.orders.payment import pay_order
from shequn.orders.refunds import refund_order
from shequn.orders.tables import order_lines, orders, payments
from shequn.referrals.tables import referral_bindings, referral_paths
from shequn.schema import all_metadata
from shequn.settlement.service import run_settlement
from shequn.tenancy.service import create_tenant
from shequn.transfer.exports import prepare_export
from shequn.transfer.imports import import_file
from shequn.transfer.rules import MEMBER_COLUMNS, ORDER_COLUMNS
from tests import factories as f

MEMBER_HEADER = "external_id,name,phone,tags,tier,referrer_external_id,registered_at\n"
ORDER_HEADER = "external_order_id,buyer_external_id,sku,quantity,unit_price_fen,paid_at,status\n"


def run(ctx: Ctx, kind: str, text: str, *, dry_run: bool = False) -> dict[str, Any]:
    return import_file(ctx, kind=kind, data=text.encode(), dry_run=dry_run)


def errors_of(report: dict[str, Any]) -> list[tuple[int, str | None, str]]:
    return [(e["line"], e["field"], e["code"]) for e in report["errors"]]


def contents(ctx: Ctx) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the tenant owns, table by table: equal contents mean nothing was written."""
    with ctx.db.read() as tx:
        return {
            name: sorted(
                (tuple(r) for r in tx.execute(select(t).where(t.c.tenant_id == ctx.tenant_id))),
                key=repr,
            )
            for name, t in sorted(all_metadata().tables.items())
        }


def another_tenant(ctx: Ctx, name: str = "另一个品牌 other") -> Ctx:
    tenant_id, _ = create_tenant(db=ctx.db, clock=ctx.clock, name=name)
    return Ctx(db=ctx.db, clock=ctx.clock, tenant_id=tenant_id, actor=ctx.actor)


def exported(ctx: Ctx, kind: str, **options: Any) -> bytes:
    return b"".join(prepare_export(ctx, kind=kind, **options).chunks())


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def keys_of(ctx: Ctx) -> dict[str, str]:
    """Member id → how a file names it (its external id)."""
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(members.c.id, members.c.external_id).where(members.c.tenant_id == ctx.tenant_id)
        )
        return {r.id: r.external_id or r.id for r in rows}


def tree_of(ctx: Ctx) -> dict[str, Any]:
    """What registering or importing members leaves, named by external id so that two tenants
    compare: closure rows, chain columns and counts, binding, accounts, bindings, events."""
    key = keys_of(ctx)

    def k(member_id: str | None) -> str | None:
        return key.get(member_id, member_id) if member_id is not None else None

    t = ctx.tenant_id
    with ctx.db.read() as tx:
        paths = sorted(
            (k(r.ancestor_id), k(r.descendant_id), r.depth)
            for r in tx.execute(select(referral_paths).where(referral_paths.c.tenant_id == t))
        )
        rows = {
            k(r.id): (
                r.name,
                r.phone,
                r.tier_id is not None,
                k(r.referrer_id),
                k(r.ancestor_2),
                k(r.ancestor_3),
                r.direct_count,
                r.team_count,
                r.binding_source,
                r.bound_at,
                r.created_at,
            )
            for r in tx.execute(select(members).where(members.c.tenant_id == t))
        }
        tags = sorted(
            (k(r.member_id), r.tag)
            for r in tx.execute(select(member_tags).where(member_tags.c.tenant_id == t))
        )
        opened: dict[str | None, list[Any]] = defaultdict(list)
        for r in tx.execute(
            select(accounts).where(accounts.c.tenant_id == t, accounts.c.owner_type == "member")
        ):
            opened[k(r.owner_id)].append((r.purpose, r.currency, r.tracks_balance, r.balance))
        bindings = sorted(
            (k(r.member_id), k(r.referrer_id), r.previous_referrer_id, r.kind, r.source, r.actor)
            for r in tx.execute(select(referral_bindings).where(referral_bindings.c.tenant_id == t))
        )
        happened = sorted(
            (
                k(r.subject_id),
                r.type,
                r.actor,
                sorted(
                    (name, k(v) if name.endswith("_id") else v) for name, v in r.payload.items()
                ),
            )
            for r in tx.execute(
                select(events).where(events.c.tenant_id == t, events.c.subject_type == "member")
            )
        )
    return {
        "paths": paths,
        "members": rows,
        "tags": tags,
        "accounts": {m: sorted(a) for m, a in opened.items()},
        "bindings": bindings,
        "events": happened,
    }


# --- members -----------------------------------------------------------------------------------


def test_a_dry_run_reports_every_bad_row_and_a_bad_file_imports_nothing(ctx: Ctx) -> None:
    f.member(ctx, "已有", phone="13900000009")
    text = MEMBER_HEADER + (
        "A,甲,13900000001,,,,\n"
        "A,重复,,,,,\n"
        "B,乙,12345,,,,\n"
        "C,丙,,,Gold,,\n"
        "D,丁,13900000009,,,NOBODY,\n"
        "E,戊,,,,E,\n"
        "F,己,,,,G,\n"
        "G,庚,,,,F,\n"
        "H,,,,,,2030-01-01\n"
    )
    before = contents(ctx)
    expected = [
        (3, "external_id", "external_id_duplicate"),
        (4, "phone", "phone_invalid"),
        (5, "tier", "tier_unknown"),
        (6, "phone", "phone_taken"),
        (6, "referrer_external_id", "referrer_unknown"),
        (7, "referrer_external_id", "self_referral"),
        (8, "referrer_external_id", "referral_cycle"),
        (9, "referrer_external_id", "referral_cycle"),
        (10, "name", "value_required"),
        (10, "registered_at", "time_in_future"),
    ]
    for dry_run in (True, False):
        report = run(ctx, "members", text, dry_run=dry_run)
        assert errors_of(report) == expected
        assert (report["rows"], report["valid"], report["dry_run"]) == (9, 1, dry_run)
        assert report["imported"] == {"created": 0, "matched": 0, "bound": 0}
        assert contents(ctx) == before


def test_a_dry_run_of_a_clean_file_says_what_it_would_do_and_writes_nothing(ctx: Ctx) -> None:
    before = contents(ctx)
    report = run(ctx, "members", MEMBER_HEADER + "A,甲,,,,,\nB,乙,,,,A,\n", dry_run=True)
    assert report == {
        "kind": "members",
        "dry_run": True,
        "rows": 2,
        "valid": 2,
        "errors": [],
        "planned": {"created": 2, "matched": 0, "bound": 1},
        "imported": {"created": 0, "matched": 0, "bound": 0},
    }
    assert contents(ctx) == before


def test_a_clean_file_imports_and_importing_it_again_changes_nothing(
    ctx: Ctx, clock: ManualClock
) -> None:
    vip = create_tier(ctx, name="VIP", rank=1)
    text = (
        codecs.BOM_UTF8.decode()
        + MEMBER_HEADER
        + (
            "R,根,139 0000 0001,vip|老客,VIP,,2025-03-04\n"
            "S,子,,,,R,2025-03-04 10:30\n"
            "T,孙,,,,S,\n"
            "U,曾孙,,,,T,\n"
            "V,玄孙,,新人,,U,\n"
        )
    )
    report = run(ctx, "members", text)
    assert report["errors"] == []
    assert report["imported"] == {"created": 5, "matched": 0, "bound": 4}
    tree = tree_of(ctx)
    at = ctx.clock.now()
    assert tree["members"] == {
        "R": ("根", "+8613900000001", True, None, None, None, 1, 4, None, None,
              datetime(2025, 3, 3, 16, 0, tzinfo=UTC)),
        "S": ("子", None, False, "R", None, None, 1, 3, "import", at,
              datetime(2025, 3, 4, 2, 30, tzinfo=UTC)),
        "T": ("孙", None, False, "S", "R", None, 1, 2, "import", at, at),
        "U": ("曾孙", None, False, "T", "S", "R", 1, 1, "import", at, at),
        "V": ("玄孙", None, False, "U", "T", "S", 0, 0, "import", at, at),
    }  # fmt: skip
    assert tree["tags"] == [("R", "vip"), ("R", "老客"), ("V", "新人")]
    assert len(tree["paths"]) == 5 + 4 + 3 + 2 + 1
    with ctx.db.read() as tx:
        tier_ids = tx.execute(
            select(members.c.tier_id).where(
                members.c.tenant_id == ctx.tenant_id, members.c.external_id == "R"
            )
        ).scalar_one()
    assert tier_ids == vip["id"]
    assert verify_ledger_of(ctx)["ok"]

    before = contents(ctx)
    clock.advance(hours=1)
    again = run(ctx, "members", text)
    assert (again["errors"], again["imported"]) == ([], {"created": 0, "matched": 5, "bound": 0})
    assert contents(ctx) == before


def test_importing_members_leaves_what_registering_them_one_by_one_does(ctx: Ctx) -> None:
    """Parity: the file is imported in one tenant and registered row by row in another
    (`create_member` with source `import`), both under members who were there before."""
    one_by_one = another_tenant(ctx)
    rows = [
        # external id, name, phone, tags, tier, referrer
        ("A", "甲", "13900000011", ["vip"], True, "OLD"),
        ("B", "乙", None, [], False, "A"),
        ("C", "丙", "13900000012", ["a", "b"], False, "B"),
        ("D", "丁", None, [], False, "C"),
        ("E", "戊", None, [], True, "C"),
        ("F", "己", None, [], False, "KID"),
        ("G", "庚", None, [], False, None),
        ("H", "辛", None, ["新"], False, "G"),
    ]
    for tenant in (ctx, one_by_one):
        create_tier(tenant, name="VIP", rank=1)
        old = f.member(tenant, "老会员", external_id="OLD", source="import")
        f.member(tenant, "老会员的下级", old, external_id="KID", source="import")
    text = MEMBER_HEADER + "".join(
        f"{e},{n},{p or ''},{'|'.join(t)},{'VIP' if tier else ''},{r or ''},\n"
        for e, n, p, t, tier, r in rows
    )
    report = run(ctx, "members", text)
    assert report["imported"] == {"created": 8, "matched": 0, "bound": 7}

    vip = next(iter(tier["id"] for tier in _tiers(one_by_one)))
    ids = keys_by_external(one_by_one)
    for e, n, p, t, tier, r in rows:
        created = create_member(
            one_by_one,
            name=n,
            phone=p,
            external_id=e,
            referrer_id=ids[r] if r else None,
            source="import",
            tags=t,
            tier_id=vip if tier else None,
        )
        ids[e] = created["id"]

    assert tree_of(ctx) == tree_of(one_by_one)
    with ctx.db.read() as tx:
        summary = tx.execute(
            select(events.c.payload).where(
                events.c.tenant_id == ctx.tenant_id, events.c.type == "MembersImported"
            )
        ).scalar_one()
    assert summary == {"rows": 8, "created": 8, "matched": 0, "bound": 7}


def _tiers(ctx: Ctx) -> list[dict[str, Any]]:
    return list_tiers(ctx)


def keys_by_external(ctx: Ctx) -> dict[str, str]:
    return {key: member_id for member_id, key in keys_of(ctx).items()}


def test_an_unbound_member_named_again_with_a_referrer_is_bound_with_its_team(ctx: Ctx) -> None:
    run(ctx, "members", MEMBER_HEADER + "P,p,,,,,\nX,x,,,,,\nY,y,,,,X,\nW,w,,,,Y,\n")
    report = run(ctx, "members", MEMBER_HEADER + "X,x,,,,Z,\nZ,z,,,,P,\n")
    assert report["imported"] == {"created": 1, "matched": 1, "bound": 2}
    # the same tree registered top down in another tenant
    other = another_tenant(ctx)
    ids: dict[str, str] = {}
    for name, referrer in (("P", None), ("Z", "P"), ("X", "Z"), ("Y", "X"), ("W", "Y")):
        ids[name] = f.member(
            other, name.lower(), ids.get(referrer or ""), external_id=name, source="import"
        )
    mine, theirs = tree_of(ctx), tree_of(other)
    assert mine["paths"] == theirs["paths"]
    assert mine["members"] == theirs["members"]
    assert mine["members"]["W"][3:8] == ("Y", "X", "Z", 0, 0)


# --- referral ties -----------------------------------------------------------------------------


def test_referral_ties_bind_unbound_members_and_never_move_a_tie(ctx: Ctx) -> None:
    run(ctx, "members", MEMBER_HEADER + "P,p,,,,,\nZ,z,,,,P,\nX,x,,,,,\nY,y,,,,X,\nW,w,,,,Y,\n")
    text = "member_external_id,referrer_external_id\nX,Z\nY,X\n"
    report = run(ctx, "referrals", text)
    assert (report["errors"], report["imported"]) == ([], {"bound": 1, "matched": 1})
    tree = tree_of(ctx)
    assert tree["members"]["X"][3:8] == ("Z", "P", None, 1, 2)
    assert tree["members"]["Y"][3:8] == ("X", "Z", "P", 1, 1)
    assert tree["members"]["W"][3:8] == ("Y", "X", "Z", 0, 0)
    assert tree["members"]["P"][6:8] == (1, 4)
    assert ("X", "Z", None, "bind", "import", "test") in tree["bindings"]
    with ctx.db.read() as tx:
        summary = tx.execute(
            select(events.c.payload).where(
                events.c.tenant_id == ctx.tenant_id, events.c.type == "ReferralsImported"
            )
        ).scalar_one()
    assert summary == {"rows": 2, "bound": 1, "matched": 1}

    before = contents(ctx)
    assert run(ctx, "referrals", text)["imported"] == {"bound": 0, "matched": 2}
    refused = run(ctx, "referrals", "member_external_id,referrer_external_id\nY,P\nP,W\n")
    assert errors_of(refused) == [
        (2, "referrer_external_id", "already_bound"),
        (3, "referrer_external_id", "referral_cycle"),
    ]
    assert contents(ctx) == before


# --- orders ------------------------------------------------------------------------------------


def test_historical_orders_count_for_their_buyers_and_the_ledger_and_pay_no_commission(
    ctx: Ctx,
) -> None:
    f.product(ctx, "TEA", 8_800)
    f.product(ctx, "CUP", 1_000, ladder_role="bait")
    f.two_level_plan(ctx)
    run(ctx, "members", MEMBER_HEADER + "A,甲,,,,,\nB,乙,,,,A,\n")
    ids = keys_by_external(ctx)
    text = ORDER_HEADER + (
        "O1,B,TEA,2,,2025-06-01 10:00,\n"
        "O1,B,CUP,1,900,2025-06-01 10:00,\n"
        "O2,B,TEA,1,,2025-07-01,completed\n"
        "O3,B,CUP,1,,,\n"
        "O4,A,CUP,1,,,cancelled\n"
    )
    report = run(ctx, "orders", text)
    assert (report["errors"], report["imported"]) == (
        [],
        {"created": 4, "lines": 5, "matched": 0},
    )
    with ctx.db.read() as tx:
        t = ctx.tenant_id
        made = {
            r.idempotency_key: (r.buyer_id, r.status, r.subtotal_fen, r.total_fen, r.paid_fen,
                                r.paid_at, r.completed_at)
            for r in tx.execute(select(orders).where(orders.c.tenant_id == t))
        }  # fmt: skip
        lines = tx.execute(
            select(order_lines.c.sku, order_lines.c.unit_price_fen, order_lines.c.line_total_fen)
            .where(order_lines.c.tenant_id == t)
            .order_by(order_lines.c.id)
        ).all()
        paid = sorted(
            (r.provider_txn_id, r.amount_fen)
            for r in tx.execute(select(payments).where(payments.c.tenant_id == t))
        )
        journal = sorted(
            (r.kind, r.occurred_at)
            for r in tx.execute(
                select(journal_transactions).where(journal_transactions.c.tenant_id == t)
            )
        )
        buyer = tx.execute(
            select(members).where(members.c.tenant_id == t, members.c.id == ids["B"])
        ).one()
        lines_paid = tx.execute(
            select(commission_lines.c.id).where(commission_lines.c.tenant_id == t)
        ).all()
    june, july = datetime(2025, 6, 1, 2, 0, tzinfo=UTC), datetime(2025, 6, 30, 16, 0, tzinfo=UTC)
    assert made == {
        "import:O1": (ids["B"], "paid", 18_600, 18_500, 18_500, june, None),
        "import:O2": (ids["B"], "completed", 8_800, 8_800, 8_800, july, july),
        "import:O3": (ids["B"], "created", 1_000, 1_000, 0, None, None),
        "import:O4": (ids["A"], "cancelled", 1_000, 1_000, 0, None, None),
    }
    assert [tuple(r) for r in lines] == [
        ("TEA", 8_800, 17_600),
        ("CUP", 900, 900),
        ("TEA", 8_800, 8_800),
        ("CUP", 1_000, 1_000),
        ("CUP", 1_000, 1_000),
    ]
    assert paid == [("import:O1", 18_500), ("import:O2", 8_800)]
    assert journal == [("payment_imported", june), ("payment_imported", july)]
    assert (
        buyer.paid_order_count,
        buyer.lifetime_order_count,
        buyer.paid_total_fen,
        buyer.max_order_fen,
        buyer.first_paid_at,
        buyer.last_paid_at,
    ) == (2, 2, 27_300, 18_500, june, july)
    assert lines_paid == []
    assert verify_ledger_of(ctx)["ok"]

    before = contents(ctx)
    again = run(ctx, "orders", text)
    assert (again["errors"], again["imported"]) == ([], {"created": 0, "lines": 0, "matched": 4})
    assert contents(ctx) == before

    # Imported orders live on as any other: refunded, settled, and an unpaid one paid.
    order_ids = _order_ids(ctx)
    refund_order(ctx, order_id=order_ids["import:O1"], amount_fen=900, reason="杯子碎了")
    assert run_settlement(ctx)["orders_closed"] == 1
    paid_now, _ = pay_order(
        ctx, order_id=order_ids["import:O3"], provider_txn_id="wx-o3", amount_fen=1_000
    )
    assert [(c["beneficiary_id"], c["amount_fen"]) for c in paid_now["commissions"]] == [
        (ids["A"], 100)
    ]
    assert verify_ledger_of(ctx)["ok"]


def _order_ids(ctx: Ctx) -> dict[str, str]:
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(orders.c.idempotency_key, orders.c.id).where(orders.c.tenant_id == ctx.tenant_id)
        )
        return {r.idempotency_key: r.id for r in rows}


def test_a_bad_orders_file_is_reported_row_by_row_and_imports_nothing(ctx: Ctx) -> None:
    f.product(ctx, "TEA", 8_800)
    run(ctx, "members", MEMBER_HEADER + "A,甲,,,,,\n")
    before = contents(ctx)
    report = run(
        ctx,
        "orders",
        ORDER_HEADER + "O1,A,TEA,2,,2025-06-01,\nO2,Z,TEA,1,,,\nO3,A,NOPE,1,,,\nO4,A,TEA,x,,,\n",
    )
    assert errors_of(report) == [
        (3, "buyer_external_id", "buyer_unknown"),
        (4, "sku", "product_unknown"),
        (5, "quantity", "quantity_invalid"),
    ]
    assert (report["rows"], report["valid"]) == (4, 1)
    assert contents(ctx) == before


# --- exports -----------------------------------------------------------------------------------


def test_members_export_in_both_formats_and_date_ranges(ctx: Ctx, clock: ManualClock) -> None:
    create_tier(ctx, name="VIP", rank=1)
    run(ctx, "members", MEMBER_HEADER + "R,根,13900000001,vip|老客,VIP,,\nS,子,,,,R,\n")
    clock.advance(days=2)
    run(ctx, "members", MEMBER_HEADER + "T,孙,,,,S,\n")
    ids = keys_by_external(ctx)
    whole = csv_rows(exported(ctx, "members"))
    assert [list(r.values()) for r in whole] == [
        ["R", "根", "+8613900000001", "vip|老客", "VIP", "", "2026-01-05T17:00:00+08:00",
         ids["R"], "", "", "1", "2", "0", "0"],
        ["S", "子", "", "", "", "R", "2026-01-05T17:00:00+08:00",
         ids["S"], "import", "2026-01-05T17:00:00+08:00", "1", "1", "0", "0"],
        ["T", "孙", "", "", "", "S", "2026-01-07T17:00:00+08:00",
         ids["T"], "import", "2026-01-07T17:00:00+08:00", "0", "0", "0", "0"],
    ]  # fmt: skip
    assert [r["external_id"] for r in csv_rows(exported(ctx, "members", start="2026-01-06"))] == [
        "T"
    ]
    assert [r["external_id"] for r in csv_rows(exported(ctx, "members", end="2026-01-05"))] == [
        "R",
        "S",
    ]
    assert csv_rows(exported(ctx, "members", start="2026-01-06", end="2026-01-06")) == []
    assert exported(ctx, "members", excel=True).startswith(codecs.BOM_UTF8)

    table = pq.read_table(pa.BufferReader(exported(ctx, "members", format="parquet")))
    assert table.column_names == list(whole[0])
    first = table.to_pylist()[0]
    assert (first["external_id"], first["tags"], first["team_count"]) == ("R", "vip|老客", 2)
    assert first["registered_at"] == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert str(table.schema.field("registered_at").type) == "timestamp[us, tz=Asia/Shanghai]"

    update_settings(ctx, patch={"time_zone": "UTC"})
    shown = csv_rows(exported(ctx, "members", start="2026-01-05", end="2026-01-05"))
    assert [(r["external_id"], r["registered_at"]) for r in shown] == [
        ("R", "2026-01-05T09:00:00+00:00"),
        ("S", "2026-01-05T09:00:00+00:00"),
    ]


def test_orders_commissions_and_ledger_export(ctx: Ctx) -> None:
    f.product(ctx, "TEA", 8_800)
    f.two_level_plan(ctx)
    run(ctx, "members", MEMBER_HEADER + "A,甲,,,,,\nB,乙,,,,A,\n")
    ids = keys_by_external(ctx)
    run(ctx, "orders", ORDER_HEADER + "O1,B,TEA,2,8000,2025-06-01 10:00,closed\n")
    live = f.paid_order(ctx, ids["B"], "TEA")

    orders_out = csv_rows(exported(ctx, "orders"))
    assert [
        (r["external_order_id"], r["buyer_external_id"], r["sku"], r["quantity"],
         r["unit_price_fen"], r["paid_at"], r["status"], r["order_total_fen"])
        for r in orders_out
    ] == [
        ("O1", "B", "TEA", "2", "8000", "2025-06-01T10:00:00+08:00", "closed", "16000"),
        (live["id"], "B", "TEA", "1", "8800", "2026-01-05T17:00:00+08:00", "paid", "8800"),
    ]  # fmt: skip
    june = exported(ctx, "orders", start="2025-06-01", end="2025-06-30")
    assert [r["external_order_id"] for r in csv_rows(june)] == ["O1"]

    commissions = csv_rows(exported(ctx, "commissions"))
    assert [
        (r["order_id"], r["beneficiary_external_id"], r["level"], r["amount_fen"], r["status"])
        for r in commissions
    ] == [(live["id"], "A", "1", "880", "pending")]
    assert csv_rows(exported(ctx, "commissions", end="2025-12-31")) == []

    ledger = csv_rows(exported(ctx, "ledger"))
    sums: dict[str, int] = defaultdict(int)
    for r in ledger:
        sums[r["transaction_id"]] += int(r["amount"])
    assert set(sums.values()) == {0}
    kinds = sorted({(r["kind"], r["ref_id"]) for r in ledger})
    assert ("payment_imported", _order_ids(ctx)["import:O1"]) in kinds
    old = csv_rows(exported(ctx, "ledger", start="2025-06-01", end="2025-06-01"))
    assert sorted((r["purpose"], r["amount"]) for r in old) == [
        ("payment_clearing", "-16000"),
        ("sales", "16000"),
    ]
    for kind in ("orders", "commissions", "ledger"):
        table = pq.read_table(pa.BufferReader(exported(ctx, kind, format="parquet")))
        assert table.num_rows == len(csv_rows(exported(ctx, kind)))


# --- a round trip ------------------------------------------------------------------------------


def _imported_columns(rows: list[dict[str, str]], columns: tuple[str, ...]) -> list[list[str]]:
    return [[r[c] for c in columns] for r in rows]


def test_an_export_imports_into_another_tenant_and_back_into_its_own(ctx: Ctx) -> None:
    other = another_tenant(ctx)
    for tenant in (ctx, other):
        create_tier(tenant, name="VIP", rank=1)
        f.product(tenant, "TEA", 8_800)
        f.product(tenant, "CUP", 1_000, ladder_role="bait")
    run(
        ctx,
        "members",
        MEMBER_HEADER
        + 'R,根,13900000001,vip|老客,VIP,,2025-03-04\nS,"子, 二",,,,R,\nT,孙,,新,,S,\n',
    )
    f.member(ctx, "没有外部编号", ctx_member_of(ctx, "T"))
    run(
        ctx,
        "orders",
        ORDER_HEADER
        + "O1,S,TEA,2,,2025-06-01 10:00,\nO1,S,CUP,1,900,2025-06-01 10:00,\n"
        + "O2,T,CUP,3,,,\nO3,R,TEA,1,,2025-07-01,shipped\n",
    )
    members_out = exported(ctx, "members")
    orders_out = exported(ctx, "orders")

    assert run(other, "members", members_out.decode())["imported"] == {
        "created": 4,
        "matched": 0,
        "bound": 3,
    }
    assert run(other, "orders", orders_out.decode())["imported"] == {
        "created": 3,
        "lines": 4,
        "matched": 0,
    }
    for kind, columns in (("members", MEMBER_COLUMNS), ("orders", ORDER_COLUMNS)):
        mine = _imported_columns(csv_rows(exported(ctx, kind)), columns.imported)
        theirs = _imported_columns(csv_rows(exported(other, kind)), columns.imported)
        assert theirs == mine

    before = contents(ctx)
    assert run(ctx, "members", members_out.decode())["imported"] == {
        "created": 0,
        "matched": 4,
        "bound": 0,
    }
    assert run(ctx, "orders", orders_out.decode())["imported"] == {
        "created": 0,
        "lines": 0,
        "matched": 3,
    }
    assert contents(ctx) == before


def ctx_member_of(ctx: Ctx, external_id: str) -> str:
    return keys_by_external(ctx)[external_id]


# --- bulk, with progress -------------------------------------------------------------------------


def _statements_of(ctx: Ctx, work: Any) -> int:
    """How many SQL statements `work()` sends."""
    engine = ctx.db.engine
    sent: list[str] = []

    def count(*_: Any) -> None:
        sent.append("")

    sqlalchemy_event.listen(engine, "before_cursor_execute", count)
    try:
        work()
    finally:
        sqlalchemy_event.remove(engine, "before_cursor_execute", count)
    return len(sent)


def _members_file(prefix: str, count: int, phones: str = "139") -> str:
    """`count` members, three under each, with phones of the prefix `phones`."""
    lines = [f"{prefix}0,根{prefix},,,,,\n"]
    for n in range(1, count):
        referrer = f"{prefix}{(n - 1) // 3}"
        lines.append(f"{prefix}{n},会员{prefix}{n},{phones}{n:08d},,,{referrer},\n")
    return MEMBER_HEADER + "".join(lines)


def test_an_import_writes_in_bulk_statements_whatever_the_number_of_rows(ctx: Ctx) -> None:
    run(ctx, "members", _members_file("W", 2, "137"))  # what a first import reads and keeps
    small = _statements_of(ctx, lambda: run(ctx, "members", _members_file("S", 20, "138")))
    large = _statements_of(ctx, lambda: run(ctx, "members", _members_file("L", 400, "139")))
    assert small == large  # twenty times the rows, not one statement more
    assert large < 60
    with ctx.db.read() as tx:
        imported = tx.execute(
            select(members.c.binding_source).where(
                members.c.tenant_id == ctx.tenant_id, members.c.external_id.like("L%")
            )
        ).all()
    assert len(imported) == 400
    assert {r.binding_source for r in imported} == {None, "import"}


def test_an_import_reports_its_progress_stage_by_stage(ctx: Ctx) -> None:
    heard: list[tuple[str, int, int]] = []
    data = _members_file("P", 30).encode()
    report = import_file(ctx, kind="members", data=data, progress=lambda *step: heard.append(step))
    assert report["imported"]["created"] == 30
    stages = list(dict.fromkeys(stage for stage, _, _ in heard))
    assert stages == ["read", "check", "write"]
    for stage in stages:
        last = [(done, total) for s, done, total in heard if s == stage][-1]
        assert last[0] == last[1]  # each stage ends complete
    assert ("read", 30, 30) in heard
