"""Sends the due messages of automated adapters (the signed webhook).

A round claims a batch in one short transaction (on PostgreSQL `FOR UPDATE SKIP LOCKED`, so
that two dispatchers take different messages) by moving their next attempt past a lease,
commits, sends each, and records each outcome in a transaction of its own. A dispatcher that
dies mid-round leaves its messages to be claimed again when the lease ends: receivers keep
the message ids they have seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx2
from sqlalchemy import and_, select, update

from shequn.clock import Clock
from shequn.community.outbox.adapters import Outgoing, SignedWebhookAdapter
from shequn.community.outbox.rules import MAX_ATTEMPTS, Adapter, MessageStatus, retry_delay
from shequn.community.outbox.service import channel_secret
from shequn.community.tables import outbox_channels, outbox_messages
from shequn.db import Database
from shequn.webhooks.worker import Resolver, resolve_host

LEASE = timedelta(minutes=2)


@dataclass
class Dispatched:
    sent: int = 0
    failed: int = 0  # attempts that failed (the message is tried again unless it gave up)
    gave_up: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "gave_up": self.gave_up}


def _claim(db: Database, clock: Clock, tenant_id: str | None, limit: int) -> list[Any]:
    now = clock.now()
    m, c = outbox_messages.c, outbox_channels.c
    with db.transaction() as tx:
        query = (
            select(m.tenant_id, m.id)
            .where(
                m.status == MessageStatus.PENDING.value,
                m.adapter == Adapter.SIGNED_WEBHOOK.value,
                m.next_attempt_at <= now,
            )
            .order_by(m.next_attempt_at, m.id)
            .limit(limit)
        )
        if tenant_id is not None:
            query = query.where(m.tenant_id == tenant_id)
        if tx.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        keys = tx.execute(query).all()
        if not keys:
            return []
        for key in keys:
            tx.execute(
                update(outbox_messages)
                .where(m.tenant_id == key.tenant_id, m.id == key.id)
                .values(next_attempt_at=now + LEASE)
            )
        rows = tx.execute(
            select(outbox_messages, c.url, c.secret_salt, c.active)
            .join(
                outbox_channels,
                and_(c.tenant_id == m.tenant_id, c.id == m.channel_id),
            )
            .where(
                m.tenant_id.in_({k.tenant_id for k in keys}),
                m.id.in_([k.id for k in keys]),
            )
            .order_by(m.id)
        ).all()
    return list(rows)


def dispatch_round(
    db: Database,
    *,
    server_key: str,
    clock: Clock,
    tenant_id: str | None = None,
    limit: int = 50,
    http: httpx2.Client | None = None,
    allow_private: bool = False,
    resolve: Resolver = resolve_host,
) -> Dispatched:
    """Claim up to `limit` due messages, send them and record the outcomes (to public
    addresses only unless `allow_private`)."""
    done = Dispatched()
    claimed = _claim(db, clock, tenant_id, limit)
    if not claimed:
        return done
    client = http or httpx2.Client(timeout=10.0, follow_redirects=False)
    try:
        for row in claimed:
            now = clock.now()
            outgoing = Outgoing(
                tenant_id=row.tenant_id,
                id=row.id,
                kind=row.kind,
                body=row.body,
                staff_account_id=row.staff_account_id,
                member_id=row.member_id,
                group_id=row.group_id,
                due_at=row.due_at,
                payload=dict(row.payload),
            )
            error: str | None
            if not row.active:
                result_ok, error = False, "channel paused"
            else:
                secret = channel_secret(
                    server_key,
                    tenant_id=row.tenant_id,
                    channel_id=row.channel_id,
                    salt=row.secret_salt,
                )
                adapter = SignedWebhookAdapter(
                    row.url, secret, client, allow_private=allow_private, resolve=resolve
                )
                sent = adapter.send(outgoing, now=now)
                result_ok, error = sent.ok, sent.error
            attempts = row.attempts + 1
            values: dict[str, Any] = {"attempts": attempts, "last_error": error}
            if result_ok:
                values.update(status=MessageStatus.SENT.value, finished_at=now)
                values["finished_by"] = "dispatcher"
                done.sent += 1
            elif attempts >= MAX_ATTEMPTS:
                values.update(status=MessageStatus.FAILED.value, finished_at=now)
                done.failed += 1
                done.gave_up += 1
            else:
                values["next_attempt_at"] = now + retry_delay(attempts)
                done.failed += 1
            m = outbox_messages.c
            with db.transaction() as tx:
                tx.execute(
                    update(outbox_messages)
                    .where(
                        m.tenant_id == row.tenant_id,
                        m.id == row.id,
                        m.status == MessageStatus.PENDING.value,
                    )
                    .values(**values)
                )
    finally:
        if http is None:
            client.close()
    return done


def dispatch_all(
    db: Database,
    *,
    server_key: str,
    clock: Clock,
    tenant_id: str | None = None,
    limit: int = 50,
    http: httpx2.Client | None = None,
    max_rounds: int = 1_000,
    allow_private: bool = False,
    resolve: Resolver = resolve_host,
) -> Dispatched:
    """Rounds until nothing is due (or `max_rounds`)."""
    total = Dispatched()
    for _ in range(max_rounds):
        one = dispatch_round(
            db,
            server_key=server_key,
            clock=clock,
            tenant_id=tenant_id,
            limit=limit,
            http=http,
            allow_private=allow_private,
            resolve=resolve,
        )
        total.sent += one.sent
        total.failed += one.failed
        total.gave_up += one.gave_up
        if one.sent + one.failed == 0:
            break
    return total
