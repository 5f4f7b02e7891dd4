from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import Field

from shequn.entrypoints.api.http import API_PREFIX, Body, Reader, Writer, blocking
from shequn.entrypoints.api.shapes import (
    IDEMPOTENCY_KEY,
    IDEMPOTENCY_KEY_TEXT,
    Page,
    Shape,
    cursor,
    limits,
    page_limit,
    replay_responses,
    text_limits,
)
from shequn.money import MAX_AMOUNT_FEN
from shequn.wallet import service
from shequn.wallet.rules import WithdrawalStatus

router = APIRouter(prefix=API_PREFIX, tags=["wallet"])

MEMBER_ID = "The member's id (`mem_…`)."
WITHDRAWAL_ID = "The withdrawal's id (`wd_…`)."


# --- requests ------------------------------------------------------------------------------


class WithdrawalIn(Body):
    amount_fen: int = Field(
        description="The amount taken from the available wallet, in fen, fee included: at "
        "least the tenant's `withdrawal_min_fen` (else 422 `withdrawal_below_minimum`), at "
        "most what is available (else 409 `insufficient_funds`).",
        json_schema_extra=limits(minimum=1, maximum=MAX_AMOUNT_FEN),
    )
    idempotency_key: str | None = Field(
        default=None,
        description=IDEMPOTENCY_KEY_TEXT,
        json_schema_extra=limits(**IDEMPOTENCY_KEY),
    )


class RejectIn(Body):
    reason: str = Field(
        description="Why, shown to the member: 1 to 500 characters once spaces are collapsed "
        "(else 422 `reject_reason_required`).",
        json_schema_extra=limits(**text_limits(500)),
    )


class PayoutResultIn(Body):
    payout_id: str = Field(
        description="The withdrawal's `payout_id`, as sent to the payout provider (else 409 "
        "`payout_id_mismatch`)."
    )
    status: Literal["paid", "failed"] = Field(
        description="`paid`: the money reached the member; `failed`: the payout bounced and "
        "the amount goes back to the wallet."
    )
    provider_ref: str | None = Field(
        default=None,
        description="The provider's reference, at most 120 characters (else 422 "
        "`provider_ref_invalid`).",
        json_schema_extra=limits(maxLength=120),
    )
    reason: str | None = Field(
        default=None, description="Why it failed; trimmed, its first 500 characters kept."
    )


# --- answers -------------------------------------------------------------------------------


class WalletOut(Shape):
    member_id: str
    currency: str = Field(description="ISO 4217 (`CNY`).")
    available_fen: int = Field(description="May be withdrawn now, in fen.")
    pending_fen: int = Field(description="Commissions of orders not closed yet, in fen.")
    debt_fen: int = Field(
        description="Commission paid out and then reversed by a refund, to be repaid from "
        "future commissions, in fen."
    )
    withdrawing_fen: int = Field(description="In withdrawals not paid out yet, in fen.")
    points: int


class WithdrawalOut(Shape):
    id: str
    member_id: str
    amount_fen: int = Field(description="Taken from the wallet, fee included, in fen.")
    fee_fen: int
    net_fen: int = Field(description="What the member receives, in fen.")
    status: WithdrawalStatus = Field(
        description="requested → approved → paid or failed (the amount back to the wallet); "
        "requested or approved → rejected (the amount back to the wallet)."
    )
    payout_id: str = Field(
        description="Sent to the payout provider on every attempt, so that a retried payout "
        "is never paid twice."
    )
    idempotency_key: str | None
    provider_ref: str | None
    reason: str | None
    decided_by: str | None = Field(
        description="`auto` when approved under the thresholds, else the deciding key."
    )
    requested_at: datetime
    approved_at: datetime | None
    finished_at: datetime | None


class WithdrawalPage(Page[WithdrawalOut]):
    pass


# --- routes --------------------------------------------------------------------------------


@router.get("/members/{member_id}/wallet", response_model=WalletOut)
@blocking
def wallet(ctx: Reader, member_id: str = Path(description=MEMBER_ID)) -> dict[str, Any]:
    """Read a member's wallet

    Its available, pending and owed amounts and its points."""
    return service.wallet(ctx, member_id=member_id)


@router.post(
    "/members/{member_id}/withdrawals",
    status_code=status.HTTP_201_CREATED,
    response_model=WithdrawalOut,
    responses=replay_responses(WithdrawalOut, "withdrawal"),
)
@blocking
def request_withdrawal(
    ctx: Writer,
    body: WithdrawalIn,
    response: Response,
    member_id: str = Path(description=MEMBER_ID),
) -> dict[str, Any]:
    """Request a withdrawal

    Takes the amount from the available wallet at once (never more than it holds, however
    many requests race) and charges the tenant's fee. It is approved at once when it is at
    most `withdrawal_auto_approve_max_fen` and within the member's daily count and amount
    limits; otherwise it waits for an operator."""
    withdrawal, replayed = service.request_withdrawal(
        ctx, member_id=member_id, amount_fen=body.amount_fen, idempotency_key=body.idempotency_key
    )
    if replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return withdrawal


@router.get("/withdrawals", response_model=WithdrawalPage)
@blocking
def list_withdrawals(
    ctx: Reader,
    member_id: str | None = Query(default=None, description="Only this member's (`mem_…`)."),
    status: str | None = Query(
        default=None,
        description="Only withdrawals in this state (else 422 `withdrawal_status_invalid`).",
        json_schema_extra={"enum": [s.value for s in WithdrawalStatus]},
    ),
    after: str | None = Query(
        default=None,
        description="The `next_after` of the page before (else 422 `cursor_invalid`).",
        json_schema_extra=cursor("wd"),
    ),
    limit: int = Query(
        default=50,
        description="Withdrawals per page, 1 to 500 (else 422 `limit_out_of_range`).",
        json_schema_extra=page_limit(),
    ),
) -> dict[str, Any]:
    """List withdrawals

    Oldest first, a page at a time."""
    return service.list_withdrawals(
        ctx, member_id=member_id, status=status, after=after, limit=limit
    )


@router.get("/withdrawals/{withdrawal_id}", response_model=WithdrawalOut)
@blocking
def get_withdrawal(
    ctx: Reader, withdrawal_id: str = Path(description=WITHDRAWAL_ID)
) -> dict[str, Any]:
    """Read a withdrawal

    With its amounts, its state and who decided it."""
    return service.get_withdrawal(ctx, withdrawal_id=withdrawal_id)


@router.post("/withdrawals/{withdrawal_id}/approve", response_model=WithdrawalOut)
@blocking
def approve(ctx: Writer, withdrawal_id: str = Path(description=WITHDRAWAL_ID)) -> dict[str, Any]:
    """Approve a requested withdrawal

    It can then be paid out (else 409 `withdrawal_transition_invalid`)."""
    return service.approve_withdrawal(ctx, withdrawal_id=withdrawal_id)


@router.post("/withdrawals/{withdrawal_id}/reject", response_model=WithdrawalOut)
@blocking
def reject(
    ctx: Writer, body: RejectIn, withdrawal_id: str = Path(description=WITHDRAWAL_ID)
) -> dict[str, Any]:
    """Reject a withdrawal before it is paid out

    The amount goes back to the member's available wallet."""
    return service.reject_withdrawal(ctx, withdrawal_id=withdrawal_id, reason=body.reason)


@router.post("/withdrawals/{withdrawal_id}/payout-result", response_model=WithdrawalOut)
@blocking
def payout_result(
    ctx: Writer,
    body: PayoutResultIn,
    response: Response,
    withdrawal_id: str = Path(description=WITHDRAWAL_ID),
) -> dict[str, Any]:
    """Record the payout provider's answer

    For an approved withdrawal: `paid` finishes it, `failed` returns the amount to the
    wallet. The same answer again changes nothing (`Idempotent-Replayed: true`)."""
    withdrawal, replayed = service.record_payout_result(
        ctx,
        withdrawal_id=withdrawal_id,
        payout_id=body.payout_id,
        status=body.status,
        provider_ref=body.provider_ref,
        reason=body.reason,
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return withdrawal
