"""The append-only business event log, written in the same transaction as each change."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from shequn.batch import WriteBatch
from shequn.context import Ctx
from shequn.events.tables import events
from shequn.ids import new_id


@dataclass(frozen=True)
class Event:
    type: str
    subject_type: str
    subject_id: str
    payload: Mapping[str, Any] = field(default_factory=dict)


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
    batch.insert(events, rows)


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
