"""The append-only business event log, written in the same transaction as each change.

Every event is fanned out, in the statement that records it, to the webhook outbox: one pending
delivery per active endpoint of the tenant subscribed to its type (or to "*"). The deliveries
are selected in the database from the events just written (`batch.Derived`), so a tenant
without endpoints costs one index probe per statement and nothing is read into Python. The
events domain sits below `shequn.webhooks` and names its tables here by their names; the
webhooks domain declares them (`shequn.webhooks.tables`) and its tests check the two agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Connection, FromClause, Insert, column, func, literal, select, table

from shequn.batch import Derived, WriteBatch
from shequn.context import Ctx
from shequn.db import sql_new_id
from shequn.errors import InvalidInput
from shequn.events.tables import events
from shequn.events.types import EVENT_TYPES, SUBJECT_TYPES
from shequn.ids import checked_cursor, new_id


@dataclass(frozen=True)
class Event:
    type: str
    subject_type: str
    subject_id: str
    payload: Mapping[str, Any] = field(default_factory=dict)


# The webhook tables as the outbox insert uses them (declared in shequn.webhooks.tables).
webhook_subscriptions = table(
    "webhook_subscriptions", column("tenant_id"), column("event_type"), column("endpoint_id")
)
webhook_endpoints = table(
    "webhook_endpoints", column("tenant_id"), column("id"), column("active", Boolean)
)
OUTBOX_COLUMNS = (
    "tenant_id",
    "id",
    "endpoint_id",
    "event_id",
    "event_type",
    "subject_type",
    "subject_id",
    "status",
    "attempts",
    "failures",
    "next_attempt_at",
    "created_at",
)
webhook_deliveries = table("webhook_deliveries", *[column(c) for c in OUTBOX_COLUMNS])
ANY_EVENT_TYPE = "*"


def _outbox_insert(recorded: FromClause) -> Insert:
    """One pending delivery per event of `recorded` and active endpoint subscribed to its
    type. A delivery's id takes the time of its event's id (so deliveries sort like their
    events) and a random tail drawn by the database."""
    s, e, v = webhook_subscriptions, webhook_endpoints, recorded.c
    rows = (
        select(
            v.tenant_id,
            literal("whd_")
            .concat(func.substr(v.id, 5, 10))
            .concat(func.substr(sql_new_id(), 1, 16)),
            s.c.endpoint_id,
            v.id,
            v.type,
            v.subject_type,
            v.subject_id,
            literal("pending"),
            literal(0),
            literal(0),
            v.occurred_at,
            v.occurred_at,
        )
        .select_from(recorded)
        .join(
            s,
            (s.c.tenant_id == v.tenant_id) & s.c.event_type.in_([v.type, literal(ANY_EVENT_TYPE)]),
        )
        .join(e, (e.c.tenant_id == s.c.tenant_id) & (e.c.id == s.c.endpoint_id))
        .where(e.c.active)
    )
    return webhook_deliveries.insert().from_select(list(OUTBOX_COLUMNS), rows)


OUTBOX = Derived(
    name="webhook_outbox",
    reads=("tenant_id", "id", "type", "subject_type", "subject_id", "occurred_at"),
    build=_outbox_insert,
)


def fan_out_recorded(tx: Connection, *, tenant_id: str, event_ids: Sequence[str]) -> None:
    """Write the webhook deliveries of events already inserted in this transaction by a
    set-based statement of its own (`stage_events` and `record_events` do it themselves)."""
    if not event_ids:
        return
    recorded = (
        select(*[events.c[c] for c in OUTBOX.reads])
        .where(events.c.tenant_id == tenant_id, events.c.id.in_(list(event_ids)))
        .subquery("recorded")
    )
    tx.execute(OUTBOX.build(recorded))


def stage_events(
    batch: WriteBatch, *, tenant_id: str, actor: str, at: datetime, items: Iterable[Event]
) -> None:
    """Add events to a batch the caller flushes in its transaction."""
    rows = [
        {
            "tenant_id": tenant_id,
            "id": new_id("evt"),
            "type": item.type,
            "subject_type": item.subject_type,
            "subject_id": item.subject_id,
            "actor": actor,
            "payload": dict(item.payload),
            "occurred_at": at,
        }
        for item in items
    ]
    batch.insert(events, rows, then=OUTBOX)


def record_events(
    tx: Connection, *, tenant_id: str, actor: str, at: datetime, items: Iterable[Event]
) -> None:
    """Append events; the caller's transaction decides whether they are kept."""
    batch = WriteBatch()
    stage_events(batch, tenant_id=tenant_id, actor=actor, at=at, items=items)
    batch.flush(tx)


def record_event(
    tx: Connection,
    *,
    tenant_id: str,
    actor: str,
    at: datetime,
    type: str,
    subject_type: str,
    subject_id: str,
    payload: Mapping[str, Any] | None = None,
) -> None:
    record_events(
        tx,
        tenant_id=tenant_id,
        actor=actor,
        at=at,
        items=[Event(type, subject_type, subject_id, payload or {})],
    )


def list_events(
    tx: Connection,
    *,
    tenant_id: str,
    subject_type: str | None = None,
    subject_id: str | None = None,
    type: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Events in the order they were recorded (ids are time-ordered), after the id `after`."""
    query = select(events).where(events.c.tenant_id == tenant_id)
    if after is not None:
        query = query.where(events.c.id > after)
    if subject_type is not None:
        query = query.where(events.c.subject_type == subject_type)
    if subject_id is not None:
        query = query.where(events.c.subject_id == subject_id)
    if type is not None:
        query = query.where(events.c.type == type)
    query = query.order_by(events.c.id).limit(limit)
    return [dict(row._mapping) for row in tx.execute(query)]


def event_page(
    ctx: Ctx,
    *,
    subject_type: str | None = None,
    subject_id: str | None = None,
    type: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """A page of the tenant's events and the id to read on from."""
    after = checked_cursor(after, "evt")
    if type is not None and type not in EVENT_TYPES:
        raise InvalidInput("event_type_invalid", type=type)
    if subject_type is not None and subject_type not in SUBJECT_TYPES:
        raise InvalidInput("subject_type_invalid", subject_type=subject_type)
    with ctx.db.read() as tx:
        rows = list_events(
            tx,
            tenant_id=ctx.tenant_id,
            subject_type=subject_type,
            subject_id=subject_id,
            type=type,
            after=after,
            limit=limit + 1,
        )
    page = rows[:limit]
    return {
        "items": [{k: v for k, v in r.items() if k != "tenant_id"} for r in page],
        "next_after": page[-1]["id"] if len(rows) > limit else None,
    }
