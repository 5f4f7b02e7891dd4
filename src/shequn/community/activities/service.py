"""Recording activities from outside channels: `POST /activities` (an API key) and the
signed webhook of an activity source (HMAC-SHA256 over `f"{t}.{body}"`, `t` within five
minutes of the server's time, so a captured delivery cannot be replayed later).

A batch is written set-based in one transaction: its activities (one per external event id
and source: a second delivery is a duplicate, kept out), each member's counts by kind with the
first and last time in event time (so a late delivery moves `first_at`, never the count
twice), an `ActivityRecorded` event for each new one, and the members staff accounts added.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, select

from shequn.batch import WriteBatch
from shequn.community.activities.rules import (
    MAX_BATCH,
    ActivityIn,
    ActivityKind,
    checked,
    distinct_in_batch,
    parse_activity,
)
from shequn.community.common import (
    dialect_insert,
    earliest,
    ids_in,
    insert_ignoring,
    latest,
    view,
)
from shequn.community.rituals.badges import grant_in
from shequn.community.staff.service import record_adds
from shequn.community.tables import (
    activities,
    activity_sources,
    groups,
    member_activity_facts,
    staff_accounts,
    venues,
)
from shequn.context import Ctx
from shequn.errors import Forbidden, InvalidInput, NotFound
from shequn.events.service import Event, stage_events
from shequn.ids import new_id
from shequn.members.tables import members
from shequn.webhooks.rules import verify_signature

API_SOURCE = "api"
SOURCE_SECRET_PREFIX = "acsec_"


def _known(tx: Connection, tenant_id: str, column: Any, ids: set[str], code: str) -> None:
    if not ids:
        return
    table = column.table
    found = set(
        tx.execute(
            select(column).where(table.c.tenant_id == tenant_id, ids_in(tx, column, sorted(ids)))
        ).scalars()
    )
    missing = sorted(ids - found)
    if missing:
        raise InvalidInput(code, id=missing[0][:40])


@dataclass(frozen=True)
class Recorded:
    """An activity new to the system, as written (its text, if any, only in memory)."""

    activity_id: str
    activity: ActivityIn
    community_id: str | None


def record_activities(
    ctx: Ctx, *, items: Sequence[ActivityIn], source_id: str = API_SOURCE
) -> dict[str, Any]:
    """Record a batch (at most 1,000); refused whole if any activity names a member, group,
    venue or staff account the tenant does not have."""
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        result, _ = record_in(tx, ctx, items=items, source_id=source_id, now=now)
    return result


def record_in(
    tx: Connection,
    ctx: Ctx,
    *,
    items: Sequence[ActivityIn],
    source_id: str = API_SOURCE,
    now: datetime,
) -> tuple[dict[str, Any], list[Recorded]]:
    """`record_activities` in the caller's transaction; also returns the activities new to
    the system, in event-time order."""
    if not 1 <= len(items) <= MAX_BATCH:
        raise InvalidInput("activity_batch_invalid", max=MAX_BATCH)
    cleaned = distinct_in_batch([checked(i, now=now) for i in items])
    people = {i.member_id for i in cleaned if i.member_id} | {
        i.target_member_id for i in cleaned if i.target_member_id
    }
    _known(tx, ctx.tenant_id, members.c.id, people, "activity_member_unknown")
    _known(
        tx,
        ctx.tenant_id,
        staff_accounts.c.id,
        {i.staff_account_id for i in cleaned if i.staff_account_id},
        "activity_staff_unknown",
    )
    group_ids = sorted({i.group_id for i in cleaned if i.group_id})
    venue_ids = sorted({i.venue_id for i in cleaned if i.venue_id})
    group_community = (
        dict(
            tx.execute(
                select(groups.c.id, groups.c.community_id).where(
                    groups.c.tenant_id == ctx.tenant_id, ids_in(tx, groups.c.id, group_ids)
                )
            ).all()
        )
        if group_ids
        else {}
    )
    venue_community = (
        dict(
            tx.execute(
                select(venues.c.id, venues.c.community_id).where(
                    venues.c.tenant_id == ctx.tenant_id, ids_in(tx, venues.c.id, venue_ids)
                )
            ).all()
        )
        if venue_ids
        else {}
    )
    for gid in group_ids:
        if gid not in group_community:
            raise InvalidInput("activity_group_unknown", id=gid[:40])
    for vid in venue_ids:
        if vid not in venue_community:
            raise InvalidInput("activity_venue_unknown", id=vid[:40])
    rows = [
        {
            "tenant_id": ctx.tenant_id,
            "id": new_id("act"),
            "source_id": source_id,
            "external_id": i.external_id,
            "kind": i.kind.value,
            "member_id": i.member_id,
            "target_member_id": i.target_member_id,
            "community_id": group_community.get(i.group_id or "")
            or venue_community.get(i.venue_id or ""),
            "group_id": i.group_id,
            "venue_id": i.venue_id,
            "staff_account_id": i.staff_account_id,
            "state": i.state,
            "value": i.value,
            "occurred_at": i.occurred_at,
            "received_at": now,
        }
        for i in sorted(cleaned, key=lambda a: a.external_id)
    ]
    new = list(
        tx.execute(
            insert_ignoring(tx, activities, ("tenant_id", "source_id", "external_id"))
            .values(rows)
            .returning(activities.c.external_id)
        ).scalars()
    )
    fresh_ids = set(new)
    fresh = [i for i in cleaned if i.external_id in fresh_ids]  # in event-time order
    _count(tx, ctx.tenant_id, fresh)
    by_external = {r["external_id"]: r for r in rows}
    batch = WriteBatch()
    stage_events(
        batch,
        tenant_id=ctx.tenant_id,
        actor=ctx.actor,
        at=now,
        items=[
            Event(
                "ActivityRecorded",
                *_subject(i),
                {
                    "activity_id": by_external[i.external_id]["id"],
                    "kind": i.kind.value,
                    "external_id": i.external_id,
                    "occurred_at": i.occurred_at,
                    "group_id": i.group_id,
                    "community_id": by_external[i.external_id]["community_id"],
                },
            )
            for i in fresh
        ],
    )
    batch.flush(tx)
    adds: list[tuple[str, str, str | None]] = [
        (i.member_id, i.staff_account_id, i.state)
        for i in fresh
        if i.kind is ActivityKind.ADD and i.member_id and i.staff_account_id
    ]
    added = record_adds(tx, ctx, adds, now=now)
    # Badges whose criteria the new activities may now meet, for these members only.
    awarded = grant_in(
        tx,
        tenant_id=ctx.tenant_id,
        at=now,
        member_ids=sorted({i.member_id for i in fresh if i.member_id}),
    )
    recorded = [
        Recorded(
            str(by_external[i.external_id]["id"]),
            i,
            cast(str | None, by_external[i.external_id]["community_id"]),
        )
        for i in fresh
    ]
    return {
        "received": len(items),
        "recorded": len(fresh),
        "duplicates": len(items) - len(fresh),
        "members_added": added,
        "badges_awarded": sum(len(v) for v in awarded.values()),
    }, recorded


def _subject(activity: ActivityIn) -> tuple[str, str]:
    if activity.member_id is not None:
        return "member", activity.member_id
    if activity.group_id is not None:
        return "group", activity.group_id
    return "venue", str(activity.venue_id)


def _count(tx: Connection, tenant_id: str, fresh: Sequence[ActivityIn]) -> None:
    """Add the new activities to each member's counts, set-based (one upsert)."""
    totals: dict[tuple[str, str], list[Any]] = {}
    for i in fresh:
        if i.member_id is None:
            continue
        key = (i.member_id, i.kind.value)
        known = totals.get(key)
        if known is None:
            totals[key] = [1, i.occurred_at, i.occurred_at]
        else:
            known[0] += 1
            known[1] = min(known[1], i.occurred_at)
            known[2] = max(known[2], i.occurred_at)
    if not totals:
        return
    values = [
        {
            "tenant_id": tenant_id,
            "member_id": m,
            "kind": k,
            "count": n,
            "first_at": first,
            "last_at": last,
        }
        for (m, k), (n, first, last) in sorted(totals.items())
    ]
    statement = dialect_insert(tx, member_activity_facts).values(values)
    f = member_activity_facts.c
    tx.execute(
        statement.on_conflict_do_update(
            index_elements=["tenant_id", "member_id", "kind"],
            set_={
                "count": f.count + statement.excluded.count,
                "first_at": earliest(tx, f.first_at, statement.excluded.first_at),
                "last_at": latest(tx, f.last_at, statement.excluded.last_at),
            },
        )
    )


# --- activity sources and their signed webhook ----------------------------------------------


def source_secret(server_key: str, *, tenant_id: str, source_id: str, salt: str) -> str:
    """A source's signing secret, derived from the deployment's key (the database keeps only
    the salt)."""
    material = f"shequn.activity-source\x00{tenant_id}\x00{source_id}\x00{salt}".encode()
    return (
        SOURCE_SECRET_PREFIX + hmac.new(server_key.encode(), material, hashlib.sha256).hexdigest()
    )


def create_source(ctx: Ctx, *, server_key: str, name: str) -> dict[str, Any]:
    """An outside channel that posts activities to its own signed webhook; the answer
    carries the signing secret this once."""
    clean = " ".join(name.split())
    if not clean or len(clean) > 80:
        raise InvalidInput("field_too_long", field="name", max=80)
    now = ctx.clock.now()
    row: dict[str, Any] = {
        "tenant_id": ctx.tenant_id,
        "id": new_id("asrc"),
        "name": clean,
        "secret_salt": secrets.token_hex(16),
        "active": True,
        "created_at": now,
    }
    with ctx.db.transaction() as tx:
        tx.execute(activity_sources.insert().values(row))
        batch = WriteBatch()
        stage_events(
            batch,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[Event("ActivitySourceCreated", "activity_source", row["id"], {"name": clean})],
        )
        batch.flush(tx)
    shown = view(row, drop=("secret_salt",))
    shown["secret"] = source_secret(
        server_key, tenant_id=ctx.tenant_id, source_id=row["id"], salt=row["secret_salt"]
    )
    shown["webhook_path"] = f"/api/v1/hooks/activities/{ctx.tenant_id}/{row['id']}"
    return shown


def verified_items(
    ctx: Ctx, *, server_key: str, source_id: str, body: bytes, signature_header: str | None
) -> list[ActivityIn]:
    """The activities of a delivery to a source's webhook: refused unless its
    `Shequn-Signature` signs the body with the source's secret at a time within the replay
    window (`shequn.flows.activity_ingestion` records them)."""
    with ctx.db.read() as tx:
        source = tx.execute(
            select(activity_sources).where(
                activity_sources.c.tenant_id == ctx.tenant_id, activity_sources.c.id == source_id
            )
        ).first()
    if source is None or not source.active:
        raise NotFound("activity_source_not_found", id=source_id)
    secret = source_secret(
        server_key, tenant_id=ctx.tenant_id, source_id=source_id, salt=source.secret_salt
    )
    now = ctx.clock.now()
    if not signature_header or not verify_signature(
        secret, signature_header, body, now=int(now.timestamp())
    ):
        raise Forbidden("activity_signature_invalid")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("activity_body_invalid") from None
    if (
        not isinstance(data, Mapping)
        or set(data) != {"items"}
        or not isinstance(data["items"], list)
    ):
        raise InvalidInput("activity_body_invalid")
    if not 1 <= len(data["items"]) <= MAX_BATCH:
        raise InvalidInput("activity_batch_invalid", max=MAX_BATCH)
    return [parse_activity(item, now=now) for item in data["items"]]
