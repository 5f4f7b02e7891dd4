from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import Field

from shequn.entrypoints.api.http import API_PREFIX, Reader, blocking
from shequn.entrypoints.api.shapes import JsonData, Page, Shape, cursor
from shequn.events.service import event_page
from shequn.events.types import EVENT_TYPES, SUBJECT_TYPES
from shequn.ledger.service import verify_ledger_of

router = APIRouter(prefix=API_PREFIX, tags=["events"])


class EventOut(Shape):
    id: str = Field(description="Time-ordered (`evt_…`).")
    type: str = Field(description="What happened, in the past tense (`OrderPaid`, …).")
    subject_type: str = Field(description="What it happened to (`order`, `member`, …).")
    subject_id: str
    actor: str = Field(description="Who did it: `key:<id>` for an API key, `cli`, `system`, …")
    payload: dict[str, JsonData] = Field(
        description="The facts of the event; which ones depends on its type (amounts in fen)."
    )
    occurred_at: datetime


class EventPage(Page[EventOut]):
    pass


class BalanceMismatch(Shape):
    account_id: str
    cached: int = Field(description="The balance the account row holds.")
    postings: int = Field(description="The sum of its postings.")


class NegativeWallet(Shape):
    account_id: str
    postings: int = Field(description="The sum of its postings, below zero.")


class LedgerCheckOut(Shape):
    ok: bool = Field(description="Whether all three checks hold.")
    mismatches: list[BalanceMismatch] = Field(
        description="Accounts whose cached balance is not the sum of their postings."
    )
    unbalanced: list[str] = Field(
        description="Journal transactions whose postings do not sum to zero per currency."
    )
    negative_pending: list[NegativeWallet] = Field(description="Frozen wallets below zero.")


@router.get("/events", response_model=EventPage)
@blocking
def events(
    ctx: Reader,
    subject_type: str | None = Query(
        default=None,
        description="Only events about this kind of subject (else 422 `subject_type_invalid`).",
        json_schema_extra={"enum": sorted(SUBJECT_TYPES)},
    ),
    subject_id: str | None = Query(default=None, description="Only events about this subject."),
    type: str | None = Query(
        default=None,
        description="Only events of this type (else 422 `event_type_invalid`).",
        json_schema_extra={"enum": sorted(EVENT_TYPES)},
    ),
    after: str | None = Query(
        default=None,
        description="The `next_after` of the page before (else 422 `cursor_invalid`).",
        json_schema_extra=cursor("evt"),
    ),
    limit: int = Query(default=100, ge=1, le=1000, description="Events per page."),
) -> dict[str, Any]:
    """Read the tenant's business events

    Oldest first; pass `next_after` back as `after` to read on. A reader that follows the
    feed closely should stay a few seconds behind: an event is visible only once its
    transaction commits, and transactions commit out of order."""
    return event_page(
        ctx,
        subject_type=subject_type,
        subject_id=subject_id,
        type=type,
        after=after,
        limit=limit,
    )


@router.get("/ledger/verify", response_model=LedgerCheckOut)
@blocking
def verify_ledger(ctx: Reader) -> dict[str, Any]:
    """Verify the tenant's ledger

    Cached balances against their postings, every transaction's zero sum, and no frozen
    wallet below zero."""
    return verify_ledger_of(ctx)
