"""Over HTTP and the command line: a paid order moves the buyer and its referrer along the
growth path once `shequn community-ops follow-growth` has followed the feed; ingested messages
with sensitive words raise one crisis alert; bad texts are refused with a code and change
nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shequn.clock import ManualClock
from shequn.db import Database
from shequn.entrypoints.cli import app as cli
from tests.e2e.conftest import API, TenantKeys, contents, error_of, expect

START = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


@pytest.fixture
def ops(api: TestClient, clock: ManualClock) -> TestClient:
    clock.set(START)
    return api


def _member(api: TestClient, name: str, **extra: Any) -> str:
    return str(expect(api.post(f"{API}/members", json={"name": name, **extra}), 201)["id"])


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env={"SHEQUN_LOCALE": "en"}, catch_exceptions=False)


def _stage(api: TestClient, member_id: str) -> tuple[int, str | None]:
    growth = expect(api.get(f"{API}/members/{member_id}/growth"), 200)
    return growth["position"], growth["stage"]


def test_a_paid_order_moves_buyer_and_referrer_once_the_feed_is_followed(
    ops: TestClient, db: Database, keys: TenantKeys
) -> None:
    stages = [
        {"name": "实战", "criteria": [{"fact": "first_sale", "op": ">=", "value": 1}]},
        {"name": "分享", "criteria": [{"fact": "referred_buyers", "op": ">=", "value": 1}]},
    ]
    expect(ops.put(f"{API}/growth-path", json={"stages": stages}), 200)
    product = {"sku": "CORE-1", "name": "会员装", "price_fen": 9_900, "ladder_role": "core"}
    expect(ops.post(f"{API}/products", json=product), 201)
    referrer = _member(ops, "推荐人")
    buyer = _member(ops, "买家", referrer_id=referrer)
    for who, txn in ((referrer, "wx-1"), (buyer, "wx-2")):
        order = expect(
            ops.post(
                f"{API}/orders",
                json={"buyer_id": who, "lines": [{"sku": "CORE-1", "quantity": 1}]},
            ),
            201,
        )
        expect(
            ops.post(
                f"{API}/orders/{order['id']}/pay",
                json={"provider_txn_id": txn, "amount_fen": 9_900},
            ),
            200,
        )
    url = db.engine.url.render_as_string(hide_password=False)
    common = ("-t", keys.tenant_id, "--database-url", url)
    first = _run("community-ops", "follow-growth", *common, "--json")
    assert first.exit_code == 0, first.output
    done = json.loads(first.stdout)
    assert (done["changed"], done["swept"]) == (2, 2)
    growth = expect(ops.get(f"{API}/members/{referrer}/growth"), 200)
    assert (growth["position"], growth["stage"], growth["entered_at"] is not None) == (
        2,
        "分享",
        True,
    )
    assert _stage(ops, buyer) == (1, "实战")
    changed = expect(ops.get(f"{API}/events", params={"type": "GrowthStageChanged"}), 200)
    assert sorted((e["subject_id"], e["payload"]["to"]) for e in changed["items"]) == sorted(
        [(referrer, "分享"), (buyer, "实战")]
    )
    second = _run("community-ops", "follow-growth", *common, "--json")
    assert json.loads(second.stdout) == {
        "events": 0,
        "evaluated": 0,
        "changed": 0,
        "swept": 0,
        "tier_changes": 0,
    }
    plain = _run("community-ops", "follow-growth", *common)
    assert plain.exit_code == 0
    assert "events=0" in plain.stdout


def _group(api: TestClient, size: int) -> tuple[str, list[str]]:
    community = expect(
        api.post(f"{API}/communities", json={"name": "运营群", "size_class": 150}), 201
    )
    people = [_member(api, f"群友{i}") for i in range(size)]
    group_id = ""
    for p in people:
        placed = expect(
            api.post(f"{API}/communities/{community['id']}/members", json={"member_id": p}), 201
        )
        group_id = placed["group_id"]
    return group_id, people


def _message(external_id: str, group_id: str, member_id: str, text: str) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "kind": "message",
        "occurred_at": "2026-11-30T09:55:00+08:00",
        "member_id": member_id,
        "group_id": group_id,
        "text": text,
    }


def test_an_ingested_message_with_sensitive_words_raises_one_crisis_alert(
    ops: TestClient,
) -> None:
    group_id, people = _group(ops, 3)
    body = {"items": [_message("wx-msg-1", group_id, people[0], "这是假货吧，要去维权")]}
    first = expect(ops.post(f"{API}/activities", json=body), 200)
    assert (first["recorded"], first["scanned"], len(first["crisis_alerts"])) == (1, 1, 1)
    alert = first["crisis_alerts"][0]
    assert (alert["subject_type"], alert["subject_id"]) == ("group", group_id)
    assert alert["details"]["words"] == ["假货", "维权"]
    assert alert["details"]["members"] == [people[0]]
    assert alert["details"]["members_reached"] == 3
    again = expect(ops.post(f"{API}/activities", json=body), 200)
    assert (again["duplicates"], again["scanned"], again["crisis_alerts"]) == (1, 0, [])
    calm = {"items": [_message("wx-msg-2", group_id, people[1], "今晚的课很有收获")]}
    quiet = expect(ops.post(f"{API}/activities", json=calm), 200)
    assert (quiet["scanned"], quiet["crisis_alerts"]) == (1, [])
    alerts = expect(ops.get(f"{API}/alerts", params={"kind": "crisis"}), 200)["items"]
    assert [a["id"] for a in alerts] == [alert["id"]]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"text": "曝光" * 1_001}, 422, "validation_error"),
        ({"kind": "like"}, 422, "activity_text_not_allowed"),
    ],
)
def test_a_bad_text_is_refused_with_a_code_and_changes_nothing(
    ops: TestClient,
    db: Database,
    keys: TenantKeys,
    change: dict[str, Any],
    status: int,
    code: str,
) -> None:
    group_id, people = _group(ops, 2)
    before = contents(db, keys.tenant_id)
    item = {**_message("wx-bad", group_id, people[0], "曝光"), **change}
    response = ops.post(f"{API}/activities", json={"items": [item]})
    assert error_of(response) == (status, code)
    assert contents(db, keys.tenant_id) == before
