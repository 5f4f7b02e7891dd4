from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Response, status

from shequn.entrypoints.api.http import API_PREFIX, Body, Reader, Writer, blocking
from shequn.wallet import service

router = APIRouter(prefix=API_PREFIX, tags=["wallet"])


class WithdrawalIn(Body):
    amount_fen: int
    idempotency_key: str | None = None


class RejectIn(Body):
    reason: str


class PayoutResultIn(Body):
    payout_id: str
    status: Literal["paid", "failed"]
    provider_ref: str | None = None
    reason: str | None = None


@router.get("/members/{member_id}/wallet")
@blocking
def wallet(ctx: Reader, member_id: str) -> dict[str, Any]:
    return service.wallet(ctx, member_id=member_id)


@router.post("/members/{member_id}/withdrawals", status_code=status.HTTP_201_CREATED)
@blocking
def request_withdrawal(
    ctx: Writer, member_id: str, body: WithdrawalIn, response: Response
) -> dict[str, Any]:
    withdrawal, replayed = service.request_withdrawal(
        ctx, member_id=member_id, amount_fen=body.amount_fen, idempotency_key=body.idempotency_key
    )
    if replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return withdrawal


@router.get("/withdrawals")
@blocking
def list_withdrawals(
    ctx: Reader,
    member_id: str | None = None,
    status: str | None = None,
    after: str | None = None,
    limit: int = Query(default=50),
) -> dict[str, Any]:
    return service.list_withdrawals(
        ctx, member_id=member_id, status=status, after=after, limit=limit
    )


@router.get("/withdrawals/{withdrawal_id}")
@blocking
def get_withdrawal(ctx: Reader, withdrawal_id: str) -> dict[str, Any]:
    return service.get_withdrawal(ctx, withdrawal_id=withdrawal_id)


@router.post("/withdrawals/{withdrawal_id}/approve")
@blocking
def approve(ctx: Writer, withdrawal_id: str) -> dict[str, Any]:
    return service.approve_withdrawal(ctx, withdrawal_id=withdrawal_id)


@router.post("/withdrawals/{withdrawal_id}/reject")
@blocking
def reject(ctx: Writer, withdrawal_id: str, body: RejectIn) -> dict[str, Any]:
    return service.reject_withdrawal(ctx, withdrawal_id=withdrawal_id, reason=body.reason)


@router.post("/withdrawals/{withdrawal_id}/payout-result")
@blocking
def payout_result(
    ctx: Writer, withdrawal_id: str, body: PayoutResultIn, response: Response
) -> dict[str, Any]:
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
