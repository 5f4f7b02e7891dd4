"""Ingesting activities from outside channels with the texts of their messages: the batch is
recorded (`shequn.community.activities`) and, in the same transaction, the texts of the
activities new to the system are read for the tenant's sensitive words
(`shequn.community.complaints`), so that a delivery sent again raises nothing twice. The
texts are not stored: a crisis alert keeps the words matched and a short excerpt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shequn.community.activities import service as activities
from shequn.community.activities.rules import ActivityIn
from shequn.community.complaints.service import IngestedText, scan_ingested_in
from shequn.community.health.service import alerts_for_ids
from shequn.context import Ctx


def record_and_scan(
    ctx: Ctx, *, items: Sequence[ActivityIn], source_id: str = activities.API_SOURCE
) -> dict[str, Any]:
    """Record a batch of activities and scan the new messages' texts; the answer of
    `record_activities` with the crisis alerts raised or brought up to date."""
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        result, fresh = activities.record_in(tx, ctx, items=items, source_id=source_id, now=now)
        texts = [
            IngestedText(r.activity_id, r.activity.text, r.activity.group_id, r.activity.member_id)
            for r in fresh
            if r.activity.text
        ]
        alert_ids = scan_ingested_in(tx, tenant_id=ctx.tenant_id, messages=texts, at=now)
        alerts = alerts_for_ids(tx, ctx.tenant_id, alert_ids) if alert_ids else []
    return {**result, "scanned": len(texts), "crisis_alerts": alerts}


def receive_signed(
    ctx: Ctx, *, server_key: str, source_id: str, body: bytes, signature_header: str | None
) -> dict[str, Any]:
    """A delivery to an activity source's signed webhook, verified, recorded and scanned."""
    items = activities.verified_items(
        ctx,
        server_key=server_key,
        source_id=source_id,
        body=body,
        signature_header=signature_header,
    )
    return record_and_scan(ctx.as_actor(f"source:{source_id}"), items=items, source_id=source_id)
