from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from shequn.events.service import list_events
from shequn.ledger.service import find_balance_mismatches, unbalanced_transactions
from shequn.web import API_PREFIX, Reader, blocking

router = APIRouter(prefix=API_PREFIX, tags=["events"])


@router.get("/events")
@blocking
def events(
    ctx: Reader,
    subject_type: str | None = None,
    subject_id: str | None = None,
    type: str | None = None,
    after: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    """The tenant's business events, oldest first; pass `next_after` back as `after` to read
    on. A reader that follows the feed closely should stay a few seconds behind: an event is
    visible only once its transaction commits, and transactions commit out of order."""
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


@router.get("/ledger/verify")
@blocking
def verify_ledger(ctx: Reader) -> dict[str, Any]:
    """Cached balances against postings, and every transaction's zero sum."""
    with ctx.db.read() as tx:
        mismatches = find_balance_mismatches(tx, tenant_id=ctx.tenant_id)
        unbalanced = unbalanced_transactions(tx, tenant_id=ctx.tenant_id)
    return {
        "ok": not mismatches and not unbalanced,
        "mismatches": mismatches,
        "unbalanced": unbalanced,
    }
