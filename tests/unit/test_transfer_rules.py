"""The import rules: reading a CSV file (with or without Excel's BOM) into records with their
line numbers, every field check, the checks across rows and against what the tenant holds,
and every error code with a message in both languages."""

from __future__ import annotations

import codecs
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shequn.errors import InvalidInput
from shequn.i18n import catalog
from shequn.members.rules import PurchaseFacts
from shequn.members.service import clean_tags
from shequn.orders import creation
from shequn.orders.rules import OrderStatus
from shequn.transfer import rules
from shequn.transfer.exports import COLUMNS
from shequn.transfer.rules import (
    MEMBER_COLUMNS,
    ORDER_COLUMNS,
    REFERRAL_COLUMNS,
    ExportKind,
    KnownMember,
    KnownProduct,
    MemberFacts,
    OrderFacts,
    RowError,
    check_members,
    check_orders,
    check_referrals,
    export_range,
    facts_with_orders,
    members_on_cycles,
    parse_members,
    parse_orders,
    parse_referrals,
    parse_time,
    read_records,
)

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ZONE = "Asia/Shanghai"


def codes(errors: list[RowError]) -> list[tuple[int, str | None, str]]:
    """The errors as (line, field, code), in the order the report gives them."""
    found = [(e.line, e.field, e.code) for e in errors]
    return sorted(found, key=lambda e: (e[0], e[1] or "", e[2]))


def members_file(text: str, facts: MemberFacts | None = None) -> Any:
    records, errors = read_records(text.encode(), MEMBER_COLUMNS)
    rows, field_errors = parse_members(records, time_zone=ZONE, now=NOW)
    plan, found = check_members(rows, facts or MemberFacts(members={}))
    return plan, codes(errors + field_errors + found)


def known(
    member_id: str, referrer: str | None = None, root: str | None = None, **extra: Any
) -> Any:
    return KnownMember(
        id=member_id,
        key=extra.get("key", member_id),
        phone=extra.get("phone"),
        referrer_id=referrer,
        referrer_key=referrer,
        root_id=root or member_id,
    )


# --- reading a file ----------------------------------------------------------------------------


def test_a_bom_is_read_past_and_the_header_is_trimmed_and_case_free() -> None:
    data = codecs.BOM_UTF8 + " External_ID ,NAME\r\nA,甲\r\n".encode()
    records, errors = read_records(data, MEMBER_COLUMNS)
    assert errors == []
    assert [(r.line, dict(r.values)) for r in records] == [(2, {"external_id": "A", "name": "甲"})]


def test_line_numbers_count_blank_lines_and_start_where_a_quoted_value_starts() -> None:
    text = 'external_id,name\n\nA,"two\nlines"\n,\nB,乙\n'
    records, errors = read_records(text.encode(), MEMBER_COLUMNS)
    assert errors == []
    assert [(r.line, r.values["external_id"]) for r in records] == [(3, "A"), (6, "B")]


def test_informative_columns_are_read_past() -> None:
    records, errors = read_records(b"external_id,name,team_count\nA,a,7\n", MEMBER_COLUMNS)
    assert errors == []
    assert dict(records[0].values) == {"external_id": "A", "name": "a"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", [(1, None, "file_empty")]),
        (codecs.BOM_UTF8 + b" \r\n", [(1, None, "file_empty")]),
        (b"external_id,name\nA,\xe7\x94\xb2\nB,\xff\n", [(3, None, "encoding_invalid")]),
        (
            b"external_id,nmae,name,name\n",
            [(1, "name", "column_duplicate"), (1, "nmae", "column_unknown")],
        ),
        (b"name\n", [(1, "external_id", "column_missing")]),
        (b"external_id,name\nA,a,,\nB,b,x\n", [(3, None, "row_too_long")]),
        (b"external_id,name\n" + b"A," + b"x" * 140_000 + b"\n", [(2, None, "csv_invalid")]),
    ],
)
def test_what_makes_a_file_unreadable(data: bytes, expected: list[Any]) -> None:
    _, errors = read_records(data, MEMBER_COLUMNS)
    assert codes(errors) == expected


def test_a_file_with_a_header_only_has_no_records() -> None:
    assert read_records(b"external_id,name\n", MEMBER_COLUMNS) == ([], [])


# --- members -----------------------------------------------------------------------------------


def test_a_clean_members_file_is_planned_in_file_order() -> None:
    plan, errors = members_file(
        "external_id,name,phone,tags,tier,referrer_external_id,registered_at\n"
        "A, 甲  一 ,139 0000 0001,vip| 老客 |vip,VIP,,2025-03-04\n"
        "B,乙,,,,A,2025-03-04T10:00:00Z\n"
        "C,丙,,,tier_1,B,\n",
        MemberFacts(members={}, tiers={"VIP": "tier_1", "tier_1": "tier_1"}),
    )
    assert errors == []
    assert [(r.external_id, r.name, r.phone, r.tags) for r in plan.create] == [
        ("A", "甲 一", "+8613900000001", ("vip", "老客")),
        ("B", "乙", None, ()),
        ("C", "丙", None, ()),
    ]
    assert plan.create[0].registered_at == datetime(2025, 3, 3, 16, 0, tzinfo=UTC)
    assert plan.create[1].registered_at == datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
    assert dict(plan.referrer_of) == {"B": "A", "C": "B"}
    assert dict(plan.tier_of) == {2: "tier_1", 4: "tier_1"}
    assert plan.matched == 0


def test_every_bad_field_of_a_member_is_reported() -> None:
    long_tag = "长" * 41
    many_tags = "|".join(f"t{i}" for i in range(51))
    _, errors = members_file(
        "external_id,name,phone,tags,registered_at\n"
        f"{'x' * 81},{'名' * 81},123,{long_tag},2025-02-30\n"
        ",\x01,,,2027-01-01\n"
        f"C,c,,{many_tags},\n"
    )
    assert errors == [
        (2, "external_id", "id_too_long"),
        (2, "name", "name_invalid"),
        (2, "phone", "phone_invalid"),
        (2, "registered_at", "time_invalid"),
        (2, "tags", "tag_invalid"),
        (3, "external_id", "value_required"),
        (3, "name", "text_invalid"),
        (3, "registered_at", "time_in_future"),
        (4, "tags", "too_many_tags"),
    ]


def test_rows_are_checked_against_each_other_and_the_tenant() -> None:
    facts = MemberFacts(
        members={
            "OLD": known("mem_old", phone="+8613900000009"),
            "mem_old": known("mem_old", phone="+8613900000009"),
            "BOUND": known("mem_bound", referrer="mem_old"),
        },
        phone_owners={"+8613900000009": "mem_old", "+8613900000008": "mem_p"},
        tiers={"VIP": "tier_1", "tier_1": "tier_1"},
    )
    plan, errors = members_file(
        "external_id,name,phone,tier,referrer_external_id\n"
        "A,a,13900000001,VIP,\n"
        "A,again,,,\n"  # the key twice
        "B,b,13900000001,,\n"  # the phone twice
        "C,c,13900000008,Gold,NOBODY\n"  # someone else's phone, no such tier or referrer
        "D,d,,,D\n"
        "BOUND,x,,,A\n"  # bound to mem_old already
        "OLD,o,13900000009,,\n",  # its own phone: fine
        facts,
    )
    assert errors == [
        (3, "external_id", "external_id_duplicate"),
        (4, "phone", "phone_duplicate"),
        (5, "phone", "phone_taken"),
        (5, "referrer_external_id", "referrer_unknown"),
        (5, "tier", "tier_unknown"),
        (6, "referrer_external_id", "self_referral"),
        (7, "referrer_external_id", "already_bound"),
    ]
    assert plan.matched == 2


def test_a_row_of_a_member_bound_where_the_file_says_changes_nothing() -> None:
    facts = MemberFacts(members={"B": known("mem_b", referrer="mem_a"), "A": known("mem_a")})
    plan, errors = members_file("external_id,name,referrer_external_id\nB,b,A\nA,a,\n", facts)
    assert errors == []
    assert (plan.create, dict(plan.referrer_of), plan.matched) == ((), {}, 2)


def test_an_unbound_member_named_with_a_referrer_is_bound() -> None:
    facts = MemberFacts(members={"B": known("mem_b")})
    plan, errors = members_file("external_id,name,referrer_external_id\nB,b,NEW\nNEW,n,\n", facts)
    assert errors == []
    assert dict(plan.referrer_of) == {"mem_b": "NEW"}


def test_cycles_are_refused_on_every_row_of_the_loop() -> None:
    _, errors = members_file("external_id,name,referrer_external_id\nX,x,Y\nY,y,Z\nZ,z,X\nW,w,X\n")
    assert errors == [
        (2, "referrer_external_id", "referral_cycle"),
        (3, "referrer_external_id", "referral_cycle"),
        (4, "referrer_external_id", "referral_cycle"),
    ]


def test_a_cycle_through_a_member_already_there_is_refused() -> None:
    # OLD (unbound) has DOWN below it; binding OLD under a new member referred by DOWN loops.
    facts = MemberFacts(
        members={
            "OLD": known("mem_old"),
            "DOWN": known("mem_down", referrer="mem_old", root="mem_old"),
        }
    )
    _, errors = members_file(
        "external_id,name,referrer_external_id\nOLD,o,NEW\nNEW,n,DOWN\n", facts
    )
    assert errors == [
        (2, "referrer_external_id", "referral_cycle"),
        (3, "referrer_external_id", "referral_cycle"),
    ]


def test_members_on_cycles_follows_the_tops_of_trees() -> None:
    roots = {"d": "a"}
    on = members_on_cycles({"a": "n", "n": "d", "x": "a"}, lambda node: roots.get(node, node))
    assert on == {"a", "n"}
    assert members_on_cycles({"a": "b"}, lambda node: node) == set()


# --- referral ties -----------------------------------------------------------------------------


def test_referral_rows_bind_unbound_members_and_refuse_a_rebind() -> None:
    facts = MemberFacts(
        members={
            "A": known("mem_a"),
            "B": known("mem_b"),
            "C": known("mem_c", referrer="mem_a"),
            "D": known("mem_d"),
            "E": known("mem_e", referrer="mem_d", root="mem_d"),
        }
    )
    text = (
        "member_external_id,referrer_external_id\n"
        "B,A\n"
        "B,A\n"  # the member twice
        "C,A\n"  # there already
        "C2,A\n"  # no such member
        "A,NOBODY\n"
        "A,A\n"
        "C,B\n"  # bound to another (and a repeat of C)
        "D,E\n"  # D's own downline
        "X,\n"
    )
    records, read_errors = read_records(text.encode(), REFERRAL_COLUMNS)
    rows, field_errors = parse_referrals(records)
    plan, errors = check_referrals(rows, facts)
    assert codes(read_errors + field_errors + errors) == [
        (3, "member_external_id", "member_duplicate"),
        (5, "member_external_id", "member_unknown"),
        (6, "referrer_external_id", "referrer_unknown"),
        (7, "referrer_external_id", "self_referral"),
        (8, "member_external_id", "member_duplicate"),
        (9, "referrer_external_id", "referral_cycle"),
        (10, "member_external_id", "member_unknown"),
        (10, "referrer_external_id", "value_required"),
    ]
    # (a plan is carried out only when no row is bad)
    assert (dict(plan.referrer_of), plan.matched) == ({"mem_b": "mem_a", "mem_d": "mem_e"}, 1)


def test_a_referral_to_a_member_bound_elsewhere_is_refused() -> None:
    facts = MemberFacts(members={"A": known("mem_a"), "C": known("mem_c", referrer="mem_x")})
    records, _ = read_records(b"member_external_id,referrer_external_id\nC,A\n", REFERRAL_COLUMNS)
    rows, _ = parse_referrals(records)
    plan, errors = check_referrals(rows, facts)
    assert [(e.line, e.code, dict(e.params)) for e in errors] == [
        (2, "already_bound", {"referrer": "mem_x"})
    ]
    assert plan.referrer_of == {}


# --- orders ------------------------------------------------------------------------------------

TEA = KnownProduct("prd_tea", "TEA", "茶", 8_800, "core", None, True)
OLD = KnownProduct("prd_old", "OLD", "旧", 1_000, "bait", None, False)
ORDER_FACTS = OrderFacts(
    orders=frozenset({"DONE"}),
    buyers={"A": "mem_a", "mem_a": "mem_a"},
    products={"TEA": TEA, "OLD": OLD},
)
ORDER_HEADER = "external_order_id,buyer_external_id,sku,quantity,unit_price_fen,paid_at,status\n"


def orders_file(text: str) -> Any:
    records, errors = read_records((ORDER_HEADER + text).encode(), ORDER_COLUMNS)
    rows, field_errors = parse_orders(records, time_zone=ZONE, now=NOW)
    plan, found = check_orders(rows, ORDER_FACTS)
    return plan, codes(errors + field_errors + found)


def test_a_clean_orders_file_groups_lines_by_order() -> None:
    plan, errors = orders_file(
        "O1,A,TEA,2,,2025-06-01 10:00,\n"
        "O1,A,OLD,1,900,2025-06-01 10:00,\n"
        "O2,mem_a,TEA,1,,,\n"
        "O3,A,TEA,1,0,2025-06-02,Closed\n"
        "DONE,A,TEA,1,,2025-06-02,\n"
    )
    assert errors == []
    assert [(o.external_order_id, o.status, o.paid_at, o.total_fen) for o in plan.create] == [
        ("O1", OrderStatus.PAID, datetime(2025, 6, 1, 2, 0, tzinfo=UTC), 18_500),
        ("O2", OrderStatus.CREATED, None, 8_800),
        ("O3", OrderStatus.CLOSED, datetime(2025, 6, 1, 16, 0, tzinfo=UTC), 0),
    ]
    assert plan.create[0].subtotal_fen == 18_600
    assert plan.matched == 1


def test_every_bad_field_of_an_order_line_is_reported() -> None:
    _, errors = orders_file(
        f"{'o' * 74},A,TEA,1,,2025-06-01,\n"
        "O2,A,TEA,,,2025-06-01,\n"
        "O3,A,TEA,0,88.00,2025-06-01,\n"
        "O4,A,TEA,1,,,paid\n"
        "O5,A,TEA,1,,2025-06-01,cancelled\n"
        "O6,A,TEA,1,,2025-06-01,refunded\n"
        "O7,A,TEA,1,,2027-01-01,\n"
        "O8,A,TEA,1,,yesterday,\n"
    )
    assert errors == [
        (2, "external_order_id", "id_too_long"),
        (3, "quantity", "value_required"),
        (4, "quantity", "quantity_invalid"),
        (4, "unit_price_fen", "amount_invalid"),
        (5, "paid_at", "paid_at_required"),
        (6, "paid_at", "paid_at_unexpected"),
        (7, "status", "status_invalid"),
        (8, "paid_at", "time_in_future"),
        (9, "paid_at", "time_invalid"),
    ]


def test_the_lines_of_an_order_are_checked_together_and_against_the_tenant() -> None:
    too_many = "".join(f"BIG,A,S{i},1,,,\n" for i in range(101))
    _, errors = orders_file(
        "O1,A,TEA,1,,2025-06-01,\n"
        "O1,B,TEA,1,,2025-06-02,\n"  # another buyer, another time, the sku again
        "O2,NOBODY,NOPE,1,,,\n"
        "O3,A,OLD,1,,,\n"  # not sold any more: an unpaid order cannot have it
        "O4,A,OLD,1,,2025-06-01,\n"  # a paid one may
        "O5,A,TEA,10000,9999999999,2025-06-01,\n" + too_many
    )
    assert errors[:7] == [
        (3, "buyer_external_id", "order_rows_disagree"),
        (3, "paid_at", "order_rows_disagree"),
        (3, "sku", "order_sku_repeated"),
        (4, "buyer_external_id", "buyer_unknown"),
        (4, "sku", "product_unknown"),
        (5, "sku", "product_inactive"),
        (7, "unit_price_fen", "order_total_too_large"),
    ]
    assert errors[7] == (8, "external_order_id", "order_lines_too_many")
    assert {e[2] for e in errors[8:]} == {"product_unknown"}


def test_historical_orders_add_to_the_purchase_facts_whenever_they_were_paid() -> None:
    before = PurchaseFacts(1, 2, 5_000, 5_000, NOW, NOW)
    early = datetime(2025, 1, 1, tzinfo=UTC)
    later = datetime(2026, 2, 1, tzinfo=UTC)
    assert facts_with_orders(before, [(8_000, early), (100, later)]) == PurchaseFacts(
        3, 4, 13_100, 8_000, early, later
    )
    empty = PurchaseFacts(0, 0, 0, 0, None, None)
    assert facts_with_orders(empty, [(300, early)]) == PurchaseFacts(1, 1, 300, 300, early, early)


# --- times ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-05", datetime(2026, 1, 4, 16, 0, tzinfo=UTC)),
        ("2026/1/5 9:30", datetime(2026, 1, 5, 1, 30, tzinfo=UTC)),
        ("2026-01-05T09:30:15.5", datetime(2026, 1, 5, 1, 30, 15, 500_000, tzinfo=UTC)),
        ("2026-01-05T09:30:00Z", datetime(2026, 1, 5, 9, 30, tzinfo=UTC)),
        ("2026-01-05T09:30:00+08:00", datetime(2026, 1, 5, 1, 30, tzinfo=UTC)),
        ("2026-01-05 09:30-0130", datetime(2026, 1, 5, 11, 0, tzinfo=UTC)),
        ("2026-02-30", None),
        ("2026-01-05T25:00", None),
        ("05/01/2026", None),
        ("2026-01-05+24:00", None),
    ],
)
def test_times_are_read_in_the_tenants_zone_unless_they_say_otherwise(
    text: str, expected: datetime | None
) -> None:
    assert parse_time(text, ZoneInfo(ZONE)) == expected


def test_an_export_range_of_dates_covers_whole_local_days() -> None:
    assert export_range("2026-01-01", "2026-01-31", ZONE) == (
        datetime(2025, 12, 31, 16, 0, tzinfo=UTC),
        datetime(2026, 1, 31, 16, 0, tzinfo=UTC),
    )
    assert export_range("2026-01-01T08:00:00Z", None, "UTC") == (
        datetime(2026, 1, 1, 8, 0, tzinfo=UTC),
        None,
    )
    assert export_range(None, " ", ZONE) == (None, None)


@pytest.mark.parametrize(
    ("start", "end", "code", "params"),
    [
        ("soon", None, "export_date_invalid", {"field": "from", "value": "soon"}),
        (None, "2026-13-01", "export_date_invalid", {"field": "to", "value": "2026-13-01"}),
        ("2026-02-01", "2026-01-31", "export_range_invalid", {}),
    ],
)
def test_a_bad_export_range_is_refused(
    start: str | None, end: str | None, code: str, params: dict[str, str]
) -> None:
    with pytest.raises(InvalidInput) as refused:
        export_range(start, end, ZONE)
    assert (refused.value.code, refused.value.params) == (code, params)


def test_cells_show_times_in_the_tenants_zone_to_the_second() -> None:
    zone = ZoneInfo(ZONE)
    at = datetime(2026, 1, 5, 1, 30, 15, 999_999, tzinfo=UTC)
    assert [rules.cell(v, zone) for v in (None, at, 8_800, "甲", True)] == [
        "",
        "2026-01-05T09:30:15+08:00",
        "8800",
        "甲",
        "true",
    ]


def test_keys_of_rows_made_elsewhere() -> None:
    assert rules.member_key("mem_1", None) == "mem_1"
    assert rules.member_key("mem_1", "wx-1") == "wx-1"
    assert rules.order_key("O1") == "import:O1"
    assert rules.external_order_id("ord_1", "import:O1") == "O1"
    assert rules.external_order_id("ord_1", "client-key") == "ord_1"
    assert rules.external_order_id("ord_1", None) == "ord_1"


# --- agreements ----------------------------------------------------------------------------------


def test_the_limits_agree_with_the_use_cases_that_make_rows_one_at_a_time() -> None:
    assert (rules.MAX_QUANTITY, rules.MAX_LINES) == (creation.MAX_QUANTITY, creation.MAX_LINES)
    assert clean_tags([f"t{i}" for i in range(rules.MAX_TAGS)]) != []
    with pytest.raises(InvalidInput):
        clean_tags([f"t{i}" for i in range(rules.MAX_TAGS + 1)])


def test_exports_of_members_and_orders_have_the_columns_their_imports_read() -> None:
    for kind, columns in ((ExportKind.MEMBERS, MEMBER_COLUMNS), (ExportKind.ORDERS, ORDER_COLUMNS)):
        names = tuple(c.name for c in COLUMNS[kind])
        assert names == columns.imported + columns.informative


def test_every_code_has_a_message_with_the_same_placeholders_in_both_languages() -> None:
    zh, en = catalog("zh_CN"), catalog("en")

    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    for code in sorted(rules.ROW_ERROR_CODES):
        key = f"transfer.error.{code}"
        assert key in zh, key
        assert key in en, key
        assert fields(zh[key]) == fields(en[key]), key
    for kind in ("members", "orders", "referrals"):
        for key in (f"transfer.cli.done.{kind}", f"transfer.cli.dry_run_ok.{kind}"):
            assert fields(zh[key]) == fields(en[key]), key
    for stage in ("read", "check", "write"):
        assert f"transfer.cli.stage.{stage}" in zh


def test_every_code_is_expected_by_a_test_above() -> None:
    source = Path(__file__).read_text()
    assert {code for code in rules.ROW_ERROR_CODES if f'"{code}")' not in source} == set()
