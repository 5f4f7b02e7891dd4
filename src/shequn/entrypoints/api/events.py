from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from shequn.entrypoints.api.http import API_PREFIX, Reader, blocking
from shequn.events.service import event_page
from shequn.ledger.service import verify_ledger_of

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
    return event_page(
        ctx,
        subject_type=subject_type,
        subject_id=subject_id,
        type=type,
        after=after,
        limit=limit,
    )


@router.get("/ledger/verify")
@blocking
def verify_ledger(ctx: Reader) -> dict[str, Any]:
    """Cached balances against postings, every transaction's zero sum, and no frozen wallet
    below zero."""
    return verify_ledger_of(ctx)
