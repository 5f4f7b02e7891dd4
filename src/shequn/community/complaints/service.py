"""Complaints and crisis: a ticket tied to a member, an order, a product and a group, with
its status, owner and SLA timers; a crisis alert when complaints cluster on one product
within the window, surface in a large group or use sensitive words, listing the groups and
members reached; the resolution written in the community's chronicle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, distinct, func, select, text, update

from shequn.catalog.tables import products
from shequn.community.common import ids_in, view
from shequn.community.communities.rules import clean_text
from shequn.community.complaints.rules import (
    CLUSTER_WINDOW,
    MAX_ALERT_ACTIVITIES,
    MAX_BODY,
    MAX_EXCERPTS,
    ComplaintStatus,
    Trigger,
    excerpt,
    merged,
    overdue,
    sensitive_words,
    timers,
    transition,
    triggers,
)
from shequn.community.complaints.tables import complaints
from shequn.community.groups.queries import require_group
from shequn.community.health.rules import AlertKind
from shequn.community.health.service import alerts_for_ids, raise_alert, resolve_alerts_in
from shequn.community.health.tables import community_alerts
from shequn.community.rituals.chronicle import write_milestones
from shequn.community.tables import community_members, groups
from shequn.context import Ctx
from shequn.errors import InvalidInput, NotFound
from shequn.events.service import Event, record_events
from shequn.i18n import Locale, translate_in
from shequn.ids import new_id
from shequn.locks import Lock, take
from shequn.members.repo import require_member
from shequn.orders.tables import orders
from shequn.tenancy.repo import load_settings


def _shown(row: Any, now: datetime) -> dict[str, Any]:
    shown = view(row)
    shown["respond_overdue"] = overdue(shown["respond_by"], shown["responded_at"], now)
    shown["resolve_overdue"] = overdue(shown["resolve_by"], shown["resolved_at"], now)
    return shown


def _serialise_product(tx: Connection, tenant_id: str, sku: str) -> None:
    """Complaints about one product follow each other, so that a cluster is seen whole."""
    take(tx, Lock.COMPLAINTS)
    if tx.dialect.name == "postgresql":
        tx.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"complaints:{tenant_id}:{sku}"},
        )


def reach_of(
    tx: Connection, tenant_id: str, member_ids: Sequence[str], group_ids: Sequence[str]
) -> dict[str, Any]:
    """The groups the complaining members are in (and those named), and how many members
    those groups reach."""
    c, g = community_members.c, groups.c
    placed = set(group_ids)
    if member_ids:
        placed |= set(
            tx.execute(
                select(c.group_id).where(
                    c.tenant_id == tenant_id,
                    ids_in(tx, c.member_id, list(member_ids)),
                    c.group_id.is_not(None),
                )
            ).scalars()
        )
    chosen = sorted(placed)
    if not chosen:
        return {"groups": [], "members_reached": 0}
    rows = tx.execute(
        select(g.id, g.name, g.size)
        .where(g.tenant_id == tenant_id, ids_in(tx, g.id, chosen))
        .order_by(g.id)
    ).all()
    reached = tx.execute(
        select(func.count(distinct(c.member_id))).where(
            c.tenant_id == tenant_id, ids_in(tx, c.group_id, chosen)
        )
    ).scalar_one()
    return {
        "groups": [{"group_id": r.id, "name": r.name, "size": int(r.size)} for r in rows],
        "members_reached": int(reached),
    }


def create_complaint(
    ctx: Ctx,
    *,
    member_id: str,
    body: str,
    order_id: str | None = None,
    sku: str | None = None,
    group_id: str | None = None,
    owner: str | None = None,
) -> dict[str, Any]:
    """A complaint ticket with its SLA timers; raises (or updates) a crisis alert when it
    makes a cluster on its product, surfaces in a large group or uses sensitive words."""
    note = (body or "").strip()
    if not note or len(note) > MAX_BODY:
        raise InvalidInput("complaint_body_invalid", max=MAX_BODY)
    clean_owner = clean_text(owner, field="owner", max_length=80) or None
    now = ctx.clock.now()
    due = timers(now)
    with ctx.db.transaction() as tx:
        require_member(tx, ctx.tenant_id, member_id)
        group_size = 0
        if group_id is not None:
            group_size = int(require_group(tx, ctx.tenant_id, group_id).size)
        if order_id is not None:
            found = tx.execute(
                select(orders.c.buyer_id).where(
                    orders.c.tenant_id == ctx.tenant_id, orders.c.id == order_id
                )
            ).first()
            if found is None:
                raise NotFound("order_not_found", id=order_id)
        if sku is not None:
            exists = tx.execute(
                select(products.c.sku).where(
                    products.c.tenant_id == ctx.tenant_id, products.c.sku == sku
                )
            ).first()
            if exists is None:
                raise NotFound("product_not_found", sku=sku[:64])
            _serialise_product(tx, ctx.tenant_id, sku)
        row: dict[str, Any] = {
            "tenant_id": ctx.tenant_id,
            "id": new_id("cmp"),
            "member_id": member_id,
            "order_id": order_id,
            "sku": sku,
            "group_id": group_id,
            "body": note,
            "status": ComplaintStatus.OPEN.value,
            "owner": clean_owner,
            "respond_by": due.respond_by,
            "resolve_by": due.resolve_by,
            "responded_at": None,
            "resolved_at": None,
            "resolution": None,
            "created_at": now,
            "updated_at": now,
        }
        tx.execute(complaints.insert().values(row))
        cluster: list[Any] = []
        if sku is not None:
            k = complaints.c
            cluster = list(
                tx.execute(
                    select(k.id, k.member_id, k.group_id, k.created_at)
                    .where(
                        k.tenant_id == ctx.tenant_id,
                        k.sku == sku,
                        k.created_at >= now - CLUSTER_WINDOW,
                        k.status != ComplaintStatus.RESOLVED.value,
                    )
                    .order_by(k.created_at, k.id)
                ).all()
            )
        why = triggers(
            product_times=[r.created_at for r in cluster],
            group_size=group_size,
            text=note,
            now=now,
        )
        alert_id = None
        if why:
            if Trigger.PRODUCT_CLUSTER in why:
                subject_type, subject_id = "product", str(sku)
                involved = cluster
            else:
                subject_type, subject_id = "complaint", row["id"]
                involved = [r for r in cluster if r.id == row["id"]] or []
            members_in = sorted({r.member_id for r in involved} | {member_id})
            groups_in = sorted(
                {r.group_id for r in involved if r.group_id} | ({group_id} if group_id else set())
            )
            reach = reach_of(tx, ctx.tenant_id, members_in, groups_in)
            alert_id, _ = raise_alert(
                tx,
                tenant_id=ctx.tenant_id,
                kind=AlertKind.CRISIS,
                subject_type=subject_type,
                subject_id=subject_id,
                details={
                    "triggers": [t.value for t in why],
                    "sku": sku,
                    "complaints": sorted({r.id for r in involved} | {row["id"]}),
                    "members": members_in,
                    "words": sensitive_words(note),
                    **reach,
                },
                at=now,
            )
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[
                Event(
                    "ComplaintOpened",
                    "complaint",
                    row["id"],
                    {"member_id": member_id, "sku": sku, "crisis_alert_id": alert_id},
                )
            ],
        )
        alerts = alerts_for_ids(tx, ctx.tenant_id, [alert_id]) if alert_id else []
    shown = _shown(row, now)
    shown["crisis_alert"] = alerts[0] if alerts else None
    return shown


def _require(tx: Connection, tenant_id: str, complaint_id: str) -> Any:
    row = tx.execute(
        select(complaints).where(
            complaints.c.tenant_id == tenant_id, complaints.c.id == complaint_id
        )
    ).first()
    if row is None:
        raise NotFound("complaint_not_found", id=complaint_id)
    return row


def get_complaint(ctx: Ctx, *, complaint_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        return _shown(_require(tx, ctx.tenant_id, complaint_id), ctx.clock.now())


def resolve_complaint(ctx: Ctx, *, complaint_id: str, resolution: str) -> dict[str, Any]:
    """Resolve a ticket: the resolution goes into the chronicle of the community of its
    group, and the product's crisis alert closes with its last open complaint."""
    note = clean_text(resolution, field="resolution", max_length=1_000, required=True)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        row = _require(tx, ctx.tenant_id, complaint_id)
        target = transition(ComplaintStatus(row.status), ComplaintStatus.RESOLVED)
        if row.sku is not None:
            _serialise_product(tx, ctx.tenant_id, row.sku)
        else:
            take(tx, Lock.COMPLAINTS)
        k = complaints.c
        tx.execute(
            update(complaints)
            .where(k.tenant_id == ctx.tenant_id, k.id == complaint_id, k.status == row.status)
            .values(
                status=target.value,
                resolution=note,
                resolved_at=now,
                responded_at=row.responded_at or now,
                updated_at=now,
            )
        )
        community_id = None
        if row.group_id is not None:
            community_id = tx.execute(
                select(groups.c.community_id).where(
                    groups.c.tenant_id == ctx.tenant_id, groups.c.id == row.group_id
                )
            ).scalar_one_or_none()
        if community_id is None:
            c = community_members.c
            community_id = tx.execute(
                select(c.community_id)
                .where(c.tenant_id == ctx.tenant_id, c.member_id == row.member_id)
                .order_by(c.joined_at)
                .limit(1)
            ).scalar_one_or_none()
        if community_id is not None:
            locale = cast(Locale, load_settings(tx, ctx.tenant_id).locale)
            write_milestones(
                tx,
                [
                    {
                        "tenant_id": ctx.tenant_id,
                        "id": new_id("chr"),
                        "community_id": community_id,
                        "kind": "resolution",
                        "milestone_key": f"complaint:{complaint_id}",
                        "title": translate_in(
                            locale,
                            "community_ops.chronicle.complaint_resolved",
                            sku=row.sku or "-",
                        )[:120],
                        "body": note,
                        "occurred_at": now,
                        "created_by": ctx.actor,
                        "created_at": now,
                    }
                ],
                actor=ctx.actor,
            )
        if row.sku is not None:
            still = tx.execute(
                select(func.count()).where(
                    k.tenant_id == ctx.tenant_id,
                    k.sku == row.sku,
                    k.status != ComplaintStatus.RESOLVED.value,
                )
            ).scalar_one()
            if not still:
                resolve_alerts_in(
                    tx,
                    tenant_id=ctx.tenant_id,
                    kind=AlertKind.CRISIS,
                    subject_type="product",
                    subject_id=row.sku,
                    at=now,
                )
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[Event("ComplaintResolved", "complaint", complaint_id, {"sku": row.sku})],
        )
        fresh = _require(tx, ctx.tenant_id, complaint_id)
    return _shown(fresh, now)


MAX_SCAN = 500


def scan_messages(ctx: Ctx, *, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Read message texts a channel hands over (they are not kept) for sensitive words: each
    group with a match gets a crisis alert naming the words, the members who wrote them and
    the members the group reaches."""
    if not 1 <= len(items) <= MAX_SCAN:
        raise InvalidInput("message_scan_invalid", max=MAX_SCAN)
    now = ctx.clock.now()
    matched: dict[str, dict[str, set[str]]] = {}
    for item in items:
        text_ = str(item.get("text") or "")
        words = sensitive_words(text_)
        if words:
            entry = matched.setdefault(str(item["group_id"]), {"words": set(), "members": set()})
            entry["words"].update(words)
            if item.get("member_id"):
                entry["members"].add(str(item["member_id"]))
    alert_ids: list[str] = []
    with ctx.db.transaction() as tx:
        for group_id in sorted({str(i["group_id"]) for i in items}):
            require_group(tx, ctx.tenant_id, group_id)
        for group_id, entry in sorted(matched.items()):
            reach = reach_of(tx, ctx.tenant_id, [], [group_id])
            alert_id, _ = raise_alert(
                tx,
                tenant_id=ctx.tenant_id,
                kind=AlertKind.CRISIS,
                subject_type="group",
                subject_id=group_id,
                details={
                    "triggers": [Trigger.SENSITIVE_WORDS.value],
                    "words": sorted(entry["words"]),
                    "members": sorted(entry["members"]),
                    **reach,
                },
                at=now,
            )
            alert_ids.append(alert_id)
        alerts = alerts_for_ids(tx, ctx.tenant_id, alert_ids) if alert_ids else []
    return {
        "scanned": len(items),
        "matched": sum(1 for i in items if sensitive_words(str(i.get("text") or ""))),
        "alerts": alerts,
    }


@dataclass(frozen=True)
class IngestedText:
    """A message ingested as an activity, with its text (read here, never stored)."""

    activity_id: str
    text: str
    group_id: str | None
    member_id: str | None


def scan_ingested_in(
    tx: Connection, *, tenant_id: str, messages: Sequence[IngestedText], at: datetime
) -> list[str]:
    """Read ingested messages for sensitive words in the caller's transaction: each group
    (or, for a message outside any group, each writer) with a match gets one crisis alert,
    or the open one brought up to date, with the words, the writers, the activities, a short
    excerpt of each and the groups and members reached. Returns the alerts' ids."""
    found: dict[tuple[str, str], dict[str, list[str]]] = {}
    for message in messages:
        words = sensitive_words(message.text)
        if not words:
            continue
        if message.group_id is not None:
            subject = ("group", message.group_id)
        elif message.member_id is not None:
            subject = ("member", message.member_id)
        else:
            continue
        entry = found.setdefault(
            subject, {"words": [], "members": [], "activities": [], "excerpts": []}
        )
        entry["words"] = sorted(set(entry["words"]) | set(words))
        if message.member_id is not None and message.member_id not in entry["members"]:
            entry["members"].append(message.member_id)
        entry["activities"].append(message.activity_id)
        entry["excerpts"].append(excerpt(message.text, words))
    alert_ids: list[str] = []
    al = community_alerts.c
    for (subject_type, subject_id), entry in sorted(found.items()):
        key = f"{AlertKind.CRISIS.value}:{subject_type}:{subject_id}"[:120]
        kept = (
            tx.execute(
                select(al.details).where(al.tenant_id == tenant_id, al.dedupe_key == key)
            ).scalar_one_or_none()
            or {}
        )
        group_ids = [subject_id] if subject_type == "group" else []
        writers = sorted(set(kept.get("members", [])) | set(entry["members"]))
        reach = reach_of(tx, tenant_id, [] if group_ids else writers, group_ids)
        alert_id, _ = raise_alert(
            tx,
            tenant_id=tenant_id,
            kind=AlertKind.CRISIS,
            subject_type=subject_type,
            subject_id=subject_id,
            details={
                **kept,
                "triggers": sorted(set(kept.get("triggers", [])) | {Trigger.SENSITIVE_WORDS.value}),
                "words": sorted(set(kept.get("words", [])) | set(entry["words"])),
                "members": writers,
                "activities": merged(
                    kept.get("activities", []), entry["activities"], MAX_ALERT_ACTIVITIES
                ),
                "excerpts": merged(kept.get("excerpts", []), entry["excerpts"], MAX_EXCERPTS),
                **reach,
            },
            at=at,
        )
        alert_ids.append(alert_id)
    return alert_ids
