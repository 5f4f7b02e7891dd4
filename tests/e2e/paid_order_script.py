"""A run of create and pay requests, good and bad, as a shop and its mistakes send them; used to
show that two ways of answering them answer the same."""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.conftest import API, World, bearer

_GENERATED = re.compile(r"\b[a-z]{2,5}_[0-9a-hjkmnp-tv-z]{26}\b")


class Names:
    """Replaces every generated id in a text by a label given in order of first sight."""

    def __init__(self, known: dict[str, str]) -> None:
        self.labels = dict(known)

    def __call__(self, text: str) -> str:
        def label(match: re.Match[str]) -> str:
            found = match.group(0)
            if found not in self.labels:
                self.labels[found] = f"<id {len(self.labels)}>"
            return self.labels[found]

        return _GENERATED.sub(label, text)


def paid_order_script(client: Any, world: World) -> list[tuple[Any, ...]]:
    """Send the run through `client` (a TestClient or anything with its `post`); each answer
    as (path, status, the headers that matter, the body with ids named)."""
    names = Names(
        {
            world.buyer: "<buyer>",
            world.parent: "<parent>",
            world.root: "<root>",
            world.created: "<created order>",
            world.paid: "<paid order>",
        }
    )
    owner = world.keys.owner
    zh = {**owner, "Accept-Language": "zh-CN"}
    answers: list[tuple[Any, ...]] = []

    def send(path: str, headers: dict[str, str], **kw: Any) -> Any:
        response = client.post(f"{API}{path}", headers=headers, **kw)
        kept = {k: v for k, v in response.headers.items() if k.lower() != "date"}
        answers.append((names(path), response.status_code, kept, names(response.text)))
        return response

    one = {"buyer_id": world.buyer, "lines": [{"sku": "CORE-1", "quantity": 2}]}
    order = send("/orders", owner, json={**one, "idempotency_key": "k-1"}).json()
    send("/orders", owner, json={**one, "idempotency_key": "k-1"})
    send(
        "/orders",
        owner,
        json={**one, "idempotency_key": "k-1", "lines": [{"sku": "CORE-1", "quantity": 3}]},
    )
    send("/orders", owner, json={**one, "lines": [{"sku": "NOPE", "quantity": 1}]})
    send("/orders", zh, json={**one, "lines": [{"sku": "NOPE", "quantity": 1}]})
    send("/orders", owner, json={**one, "lines": [{"sku": "CORE-1", "quantity": 1.5}]})
    send("/orders", owner, json={"buyer_id": world.buyer})
    send("/orders", owner, json={**one, "extra": 1})
    send("/orders", owner, json={**one, "buyer_id": "mem\x00x"})
    send("/orders", {**owner, "Content-Type": "application/json"}, content=b'{"buyer_id": ')
    send("/orders", {**owner, "Content-Type": "text/plain"}, content=b"{}")
    send("/orders", {"Accept-Language": "en"}, json=one)
    send("/orders", bearer("sk_not-a-key"), json=one)
    send("/orders", world.keys.readonly, json=one)
    send("/orders", world.other.owner, json=one)
    pay = f"/orders/{order['id']}/pay"
    send(pay, owner, json={"provider_txn_id": "wx-1", "amount_fen": 1})
    send(pay, owner, json={"provider_txn_id": "wx-1", "amount_fen": order["total_fen"]})
    send(pay, owner, json={"provider_txn_id": "wx-1", "amount_fen": order["total_fen"]})
    send(pay, owner, json={"provider_txn_id": "wx-1", "amount_fen": 1})
    send(
        f"/orders/{world.created}/pay", owner, json={"provider_txn_id": "wx-1", "amount_fen": 9_900}
    )
    send(f"/orders/{world.created}/pay", owner, json={"provider_txn_id": " ", "amount_fen": 9_900})
    send(f"/orders/{world.created}/pay", owner, json={"provider_txn_id": "wx-2", "amount_fen": -1})
    send(
        f"/orders/{world.created}/pay",
        owner,
        json={"provider_txn_id": "wx-2", "amount_fen": "9900"},
    )
    send("/orders/ord_nope/pay", owner, json={"provider_txn_id": "wx-3", "amount_fen": 1})
    send("/orders/ord_nope/pay", zh, json={"provider_txn_id": "wx-3", "amount_fen": 1})
    send(
        f"/orders/{world.other_order}/pay",
        owner,
        json={"provider_txn_id": "wx-4", "amount_fen": 100},
    )
    send(
        f"/orders/{world.created}/pay",
        world.keys.readonly,
        json={"provider_txn_id": "wx-5", "amount_fen": 9_900},
    )
    send(
        f"/orders/{world.created}/pay", owner, json={"provider_txn_id": "wx-6", "amount_fen": 9_900}
    )
    return answers
