"""Webhook use cases: endpoints (register, list, change, rotate the secret) and the deliveries
an operator looks at, replays or skips. Each opens one transaction.

The webhook tables stand outside the lock order of `shequn.locks`: a use case that locks
business rows only inserts new deliveries (which takes no lock), and these use cases lock
nothing but the one webhook row they change, by a conditional update.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)

from shequn.context import Ctx
from shequn.db import Database
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.ids import checked_cursor, new_id
from shequn.webhooks import rules
from shequn.webhooks.rules import DeliveryStatus
from shequn.webhooks.tables import (
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_subscriptions,
)

# As many endpoints as Stripe allows an account: every event is matched against each.
MAX_ENDPOINTS = 16
MAX_PAGE = 100
# Finished deliveries kept this long (an operator may look at them, or replay one), then pruned.
DEFAULT_RETENTION = timedelta(days=30)
PRUNE_ROWS = 5_000  # deliveries deleted per transaction


def _new_salt() -> str:
    return secrets.token_hex(16)


def _subscribed_types(
    tx: Connection, tenant_id: str, endpoint_ids: Sequence[str]
) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {e: [] for e in endpoint_ids}
    if not endpoint_ids:
        return found
    rows = tx.execute(
        select(webhook_subscriptions.c.endpoint_id, webhook_subscriptions.c.event_type)
        .where(
            webhook_subscriptions.c.tenant_id == tenant_id,
            webhook_subscriptions.c.endpoint_id.in_(list(endpoint_ids)),
        )
        .order_by(webhook_subscriptions.c.endpoint_id, webhook_subscriptions.c.event_type)
    )
    for endpoint_id, event_type in rows:
        found[endpoint_id].append(event_type)
    return found


def _shown_endpoint(row: Any, event_types: list[str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "description": row.description,
        "event_types": event_types,
        "active": row.active,
        "previous_secret_expires_at": row.previous_secret_expires_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _endpoint_row(tx: Connection, tenant_id: str, endpoint_id: str) -> Any:
    query = select(webhook_endpoints).where(
        webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.id == endpoint_id
    )
    row = tx.execute(query).first()
    if row is None:
        raise NotFound("webhook_endpoint_not_found", id=endpoint_id[:64])
    return row


def _subscribe(tx: Connection, tenant_id: str, endpoint_id: str, event_types: list[str]) -> None:
    tx.execute(
        insert(webhook_subscriptions),
        [
            {"tenant_id": tenant_id, "event_type": t, "endpoint_id": endpoint_id}
            for t in event_types
        ],
    )


def _secret_of(server_key: str, tenant_id: str, endpoint_id: str, salt: str) -> str:
    return rules.signing_secret(server_key, tenant_id=tenant_id, endpoint_id=endpoint_id, salt=salt)


def create_endpoint(
    ctx: Ctx,
    *,
    server_key: str,
    url: str,
    event_types: Sequence[str],
    description: str = "",
    allow_private: bool = False,
) -> dict[str, Any]:
    """Register an endpoint for some event types; its signing secret is returned this once
    (it is derived from `server_key`, the deployment's SHEQUN_SECRET_KEY, and never stored).
    A URL at a private or local address is refused unless `allow_private`."""
    clean_url = rules.validate_url(url)
    rules.check_reachable_host(clean_url, allow_private=allow_private)
    types = rules.validate_event_types(event_types)
    clean_description = rules.validate_description(description)
    endpoint_id = new_id("whe")
    salt = _new_salt()
    now = ctx.clock.now()
    e = webhook_endpoints
    existing = (
        select(func.count()).select_from(e).where(e.c.tenant_id == ctx.tenant_id).scalar_subquery()
    )
    values = {
        "tenant_id": ctx.tenant_id,
        "id": endpoint_id,
        "url": clean_url,
        "description": clean_description,
        "active": True,
        "secret_salt": salt,
        "created_at": now,
        "updated_at": now,
    }
    with ctx.db.transaction() as tx:
        # One statement that inserts nothing once the tenant has its fill of endpoints.
        written = tx.execute(
            insert(e)
            .from_select(
                list(values),
                select(*[literal(v, e.c[k].type) for k, v in values.items()]).where(
                    existing < MAX_ENDPOINTS
                ),
            )
            .returning(e.c.id)
        ).first()
        if written is None:
            raise Conflict("webhook_endpoints_limit", max=MAX_ENDPOINTS)
        _subscribe(tx, ctx.tenant_id, endpoint_id, types)
        row = _endpoint_row(tx, ctx.tenant_id, endpoint_id)
    shown = _shown_endpoint(row, types)
    shown["secret"] = _secret_of(server_key, ctx.tenant_id, endpoint_id, salt)
    return shown


def list_endpoints(ctx: Ctx) -> list[dict[str, Any]]:
    """The tenant's endpoints, oldest first (never their secrets)."""
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(webhook_endpoints)
            .where(webhook_endpoints.c.tenant_id == ctx.tenant_id)
            .order_by(webhook_endpoints.c.id)
        ).all()
        types = _subscribed_types(tx, ctx.tenant_id, [r.id for r in rows])
    return [_shown_endpoint(r, types[r.id]) for r in rows]


def update_endpoint(
    ctx: Ctx,
    *,
    endpoint_id: str,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
    allow_private: bool = False,
) -> dict[str, Any]:
    """Change an endpoint's URL, event types, description or whether it receives events. A
    paused endpoint gets no new deliveries, and its pending ones wait until it is active."""
    changes: dict[str, Any] = {}
    if url is not None:
        changes["url"] = rules.validate_url(url)
        rules.check_reachable_host(changes["url"], allow_private=allow_private)
    if description is not None:
        changes["description"] = rules.validate_description(description)
    if active is not None:
        changes["active"] = active
    types = None if event_types is None else rules.validate_event_types(event_types)
    if not changes and types is None:
        raise InvalidInput("webhook_endpoint_patch_empty")
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        # The update comes first: it holds the endpoint's row, so that two changes of its
        # event types follow each other.
        changed = tx.execute(
            update(webhook_endpoints)
            .where(
                webhook_endpoints.c.tenant_id == ctx.tenant_id,
                webhook_endpoints.c.id == endpoint_id,
            )
            .values(**changes, updated_at=now)
        ).rowcount
        if changed != 1:
            raise NotFound("webhook_endpoint_not_found", id=endpoint_id[:64])
        if types is not None:
            tx.execute(
                delete(webhook_subscriptions).where(
                    webhook_subscriptions.c.tenant_id == ctx.tenant_id,
                    webhook_subscriptions.c.endpoint_id == endpoint_id,
                )
            )
            _subscribe(tx, ctx.tenant_id, endpoint_id, types)
        row = _endpoint_row(tx, ctx.tenant_id, endpoint_id)
        subscribed = _subscribed_types(tx, ctx.tenant_id, [endpoint_id])[endpoint_id]
    return _shown_endpoint(row, subscribed)


def rotate_secret(
    ctx: Ctx, *, server_key: str, endpoint_id: str, grace_hours: int | None = None
) -> dict[str, Any]:
    """Give an endpoint a new signing secret, returned this once. For `grace_hours` (24
    unless given, 0 to end it now) deliveries are signed with the new and the old secret, so
    that the receiver can switch without refusing any."""
    grace = (
        rules.DEFAULT_ROTATION_GRACE if grace_hours is None else rules.validate_grace(grace_hours)
    )
    now = ctx.clock.now()
    salt = _new_salt()
    expires = now + grace if grace else None
    e = webhook_endpoints
    with ctx.db.transaction() as tx:
        # One statement: the salt it replaces is the one it reads.
        changed = tx.execute(
            update(e)
            .where(e.c.tenant_id == ctx.tenant_id, e.c.id == endpoint_id)
            .values(
                secret_salt=salt,
                previous_secret_salt=e.c.secret_salt if expires is not None else None,
                previous_secret_expires_at=expires,
                updated_at=now,
            )
        ).rowcount
        if changed != 1:
            raise NotFound("webhook_endpoint_not_found", id=endpoint_id[:64])
    return {
        "id": endpoint_id,
        "secret": _secret_of(server_key, ctx.tenant_id, endpoint_id, salt),
        "previous_secret_expires_at": expires,
    }


def delete_endpoint(ctx: Ctx, *, endpoint_id: str) -> None:
    """Remove an endpoint with its subscriptions, its deliveries and their attempts: it gets
    nothing more, and what it was sent goes with it."""
    d, a, s = webhook_deliveries, webhook_attempts, webhook_subscriptions
    tenant_id = ctx.tenant_id
    with ctx.db.transaction() as tx:
        removed = tx.execute(
            delete(webhook_endpoints).where(
                webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.id == endpoint_id
            )
        ).rowcount
        if removed != 1:
            raise NotFound("webhook_endpoint_not_found", id=endpoint_id[:64])
        tx.execute(delete(s).where(s.c.tenant_id == tenant_id, s.c.endpoint_id == endpoint_id))
        its_deliveries = select(d.c.id).where(
            d.c.tenant_id == tenant_id, d.c.endpoint_id == endpoint_id
        )
        tx.execute(delete(a).where(a.c.tenant_id == tenant_id, a.c.delivery_id.in_(its_deliveries)))
        tx.execute(delete(d).where(d.c.tenant_id == tenant_id, d.c.endpoint_id == endpoint_id))


def prune_deliveries(
    db: Database,
    *,
    now: datetime,
    keep: timedelta = DEFAULT_RETENTION,
    tenant_id: str | None = None,
    rows: int = PRUNE_ROWS,
) -> int:
    """Delete the deliveries that are finished (delivered or skipped) and older than `keep`,
    with their attempts, and those whose endpoint is gone; of one tenant or all. Pending and
    dead deliveries stay (they still hold their subject's younger ones back). Returns how many
    were deleted; each batch of `rows` is a transaction of its own."""
    d, a, e = webhook_deliveries, webhook_attempts, webhook_endpoints
    finished = [DeliveryStatus.DELIVERED.value, DeliveryStatus.SKIPPED.value]
    # Finished and old (by the index on status and creation), then any left by an event
    # recorded while its endpoint was being deleted.
    endpoint_gone = ~exists().where(e.c.tenant_id == d.c.tenant_id, e.c.id == d.c.endpoint_id)
    tenant = [] if tenant_id is None else [d.c.tenant_id == tenant_id]
    queries = [
        select(d.c.tenant_id, d.c.id).where(
            *tenant, d.c.status.in_(finished), d.c.created_at < now - keep
        ),
        select(d.c.tenant_id, d.c.id).where(*tenant, endpoint_gone),
    ]
    deleted = 0
    for query in queries:
        while True:
            with db.transaction() as tx:
                found = tx.execute(query.limit(rows)).all()
                by_tenant: dict[str, list[str]] = defaultdict(list)
                for row in found:
                    by_tenant[row.tenant_id].append(row.id)
                # Per tenant, by the primary keys' leading columns (a list of row values is
                # not matched by index on PostgreSQL).
                for owner, ids in sorted(by_tenant.items()):
                    tx.execute(delete(a).where(a.c.tenant_id == owner, a.c.delivery_id.in_(ids)))
                    tx.execute(delete(d).where(d.c.tenant_id == owner, d.c.id.in_(ids)))
            deleted += len(found)
            if len(found) < rows:
                break
    return deleted


# --- deliveries ----------------------------------------------------------------------------


def _shown_delivery(row: Any, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row.id,
        "endpoint_id": row.endpoint_id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "subject_type": row.subject_type,
        "subject_id": row.subject_id,
        "status": row.status,
        "attempt_count": row.attempts,
        "next_attempt_at": row.next_attempt_at if row.status == DeliveryStatus.PENDING else None,
        "created_at": row.created_at,
        "delivered_at": row.delivered_at,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "attempts": attempts,
    }


def _attempts_of(
    tx: Connection, tenant_id: str, ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    if not ids:
        return found
    a = webhook_attempts
    rows = tx.execute(
        select(a)
        .where(a.c.tenant_id == tenant_id, a.c.delivery_id.in_(list(ids)))
        .order_by(a.c.delivery_id, a.c.attempt)
    )
    for r in rows:
        found[r.delivery_id].append(
            {
                "attempt": r.attempt,
                "attempted_at": r.attempted_at,
                "duration_ms": r.duration_ms,
                "status_code": r.status_code,
                "error": r.error,
                "succeeded": r.succeeded,
            }
        )
    return found


def delivery_page(
    ctx: Ctx,
    *,
    endpoint_id: str | None = None,
    status: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """A page of the tenant's deliveries with their attempts, oldest first; `next_after` is
    the id to read on from."""
    after = checked_cursor(after, "whd")
    if status is not None and status not in DeliveryStatus.__members__.values():
        raise InvalidInput("webhook_delivery_status_invalid", status=status[:64])
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("webhook_page_limit_invalid", max=MAX_PAGE)
    d = webhook_deliveries
    query = select(d).where(d.c.tenant_id == ctx.tenant_id)
    if endpoint_id is not None:
        query = query.where(d.c.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(d.c.status == status)
    if after is not None:
        query = query.where(d.c.id > after)
    with ctx.db.read() as tx:
        if endpoint_id is not None:
            _endpoint_row(tx, ctx.tenant_id, endpoint_id)
        rows = tx.execute(query.order_by(d.c.id).limit(limit + 1)).all()
        page = rows[:limit]
        attempts = _attempts_of(tx, ctx.tenant_id, [r.id for r in page])
    return {
        "items": [_shown_delivery(r, attempts[r.id]) for r in page],
        "next_after": page[-1].id if len(rows) > limit else None,
    }


def _change_delivery(
    ctx: Ctx,
    *,
    delivery_id: str,
    allowed: frozenset[DeliveryStatus],
    refusal: str,
    values: dict[str, Any],
) -> dict[str, Any]:
    d = webhook_deliveries
    with ctx.db.transaction() as tx:
        changed = tx.execute(
            update(d)
            .where(
                d.c.tenant_id == ctx.tenant_id,
                d.c.id == delivery_id,
                d.c.status.in_([s.value for s in allowed]),
            )
            .values(values)
        ).rowcount
        row = tx.execute(
            select(d).where(d.c.tenant_id == ctx.tenant_id, d.c.id == delivery_id)
        ).first()
        if row is None:
            raise NotFound("webhook_delivery_not_found", id=delivery_id[:64])
        if changed != 1:
            raise Conflict(refusal, status=row.status)
        attempts = _attempts_of(tx, ctx.tenant_id, [delivery_id])
    return _shown_delivery(row, attempts[delivery_id])


def replay_delivery(ctx: Ctx, *, delivery_id: str) -> dict[str, Any]:
    """Send a delivered, dead or skipped delivery again, as soon as a worker can (after the
    subject's older deliveries to the endpoint, like any other), with a fresh set of retries."""
    now: datetime = ctx.clock.now()
    return _change_delivery(
        ctx,
        delivery_id=delivery_id,
        allowed=rules.REPLAYABLE,
        refusal="webhook_delivery_not_replayable",
        values={
            "status": DeliveryStatus.PENDING.value,
            "failures": 0,
            "next_attempt_at": now,
            "claimed_by": None,
            "claimed_until": None,
        },
    )


def skip_delivery(ctx: Ctx, *, delivery_id: str) -> dict[str, Any]:
    """Give up on a pending or dead delivery: it is not sent (again), and the subject's younger
    deliveries to the endpoint no longer wait for it."""
    return _change_delivery(
        ctx,
        delivery_id=delivery_id,
        allowed=rules.SKIPPABLE,
        refusal="webhook_delivery_not_skippable",
        values={"status": DeliveryStatus.SKIPPED.value, "claimed_by": None, "claimed_until": None},
    )
