"""Money: the withdrawal approval queue, payouts and their results, commission lines, debts,
and the ledger's verification."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shequn.console.rules import Capability
from shequn.entrypoints.web.forms import Form
from shequn.entrypoints.web.kit import (
    Area,
    Console,
    NavItem,
    console_for,
    page,
    redirect,
    render,
    submitted,
)
from shequn.errors import DomainError, InvalidInput
from shequn.i18n import translate
from shequn.insights.console_money import LINE_STATUSES, commission_page, debts
from shequn.ledger.service import verify_ledger_of
from shequn.wallet.rules import WithdrawalStatus
from shequn.wallet.service import (
    approve_withdrawal,
    get_withdrawal,
    list_withdrawals,
    record_payout_result,
    reject_withdrawal,
)

router = APIRouter(include_in_schema=False)

WITHDRAWAL_STATUSES = tuple(s.value for s in WithdrawalStatus)


@router.get("/console/money")
@page
async def money_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    waiting = await who.run(list_withdrawals, status="requested", limit=10)
    unpaid = await who.run(list_withdrawals, status="approved", limit=10)
    owing = await who.run(debts, limit=10)
    return render(
        who, "console/money.html", waiting=waiting, unpaid=unpaid, owing=owing, ledger=None
    )


@router.post("/console/money/verify")
@page
async def money_verify(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    await submitted(who)
    ledger = await who.run(verify_ledger_of)
    waiting = await who.run(list_withdrawals, status="requested", limit=10)
    unpaid = await who.run(list_withdrawals, status="approved", limit=10)
    owing = await who.run(debts, limit=10)
    return render(
        who, "console/money.html", waiting=waiting, unpaid=unpaid, owing=owing, ledger=ledger
    )


async def _withdrawals(
    who: Console, request: Request, *, form: Form | None = None, status: int = 200
) -> Response:
    params = {k: request.query_params.get(k, "") for k in ("status", "member", "after")}
    filters = Form(params)
    try:
        found = await who.run(
            list_withdrawals,
            status=params["status"] or None,
            member_id=params["member"] or None,
            after=params["after"] or None,
            limit=50,
        )
    except InvalidInput as exc:
        filters.refuse(exc, fields={"after": "member"})
        found = {"items": [], "next_after": None}
    return render(
        who,
        "console/withdrawals.html",
        form=form or Form(),
        filters=filters,
        found=found,
        params=params,
        statuses=WITHDRAWAL_STATUSES,
        status=status,
    )


@router.get("/console/money/withdrawals")
@page
async def withdrawals_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    return await _withdrawals(who, request)


@router.post("/console/money/withdrawals/{withdrawal_id}/{action}")
@page
async def withdrawal_action(request: Request, withdrawal_id: str, action: str) -> Response:
    who = await console_for(request, Capability.OPERATE)
    found = await who.run(get_withdrawal, withdrawal_id=withdrawal_id)
    form = await submitted(who)
    back = (
        form.get("back")
        if form.get("back").startswith("/console/money")
        else "/console/money/withdrawals"
    )
    try:
        if action == "approve":
            await who.run(approve_withdrawal, withdrawal_id=withdrawal_id)
        elif action == "reject":
            reason = form.text(f"reason_{withdrawal_id}", required=True, max_length=500)
            if reason is None:
                return await _withdrawals(who, request, form=form, status=422)
            await who.run(reject_withdrawal, withdrawal_id=withdrawal_id, reason=reason)
        elif action in ("paid", "failed"):
            await who.run(
                record_payout_result,
                withdrawal_id=withdrawal_id,
                payout_id=found["payout_id"],
                status=action,
                provider_ref=form.text(f"ref_{withdrawal_id}", max_length=120),
                reason=form.text(f"reason_{withdrawal_id}", max_length=500),
            )
        else:
            raise InvalidInput("withdrawal_action_unknown", action=action)
    except DomainError as exc:
        if exc.code in ("withdrawal_not_found", "withdrawal_action_unknown"):
            raise
        form.refuse(exc)
        return await _withdrawals(who, request, form=form, status=exc.status)
    return redirect(who, back, flash=translate(f"console.money.done.{action}"))


@router.get("/console/money/commissions")
@page
async def commissions_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    params = {k: request.query_params.get(k, "") for k in ("status", "member", "after")}
    form = Form(params)
    try:
        found = await who.run(
            commission_page,
            status=params["status"] or None,
            beneficiary_id=params["member"] or None,
            after=params["after"] or None,
        )
    except InvalidInput as exc:
        form.refuse(exc, fields={"after": "member"})
        found = {"items": [], "next_after": None}
    return render(
        who,
        "console/commissions.html",
        form=form,
        found=found,
        params=params,
        statuses=LINE_STATUSES,
    )


@router.get("/console/money/debts")
@page
async def debts_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    after = request.query_params.get("after") or None
    found = await who.run(debts, after=after)
    return render(who, "console/debts.html", found=found, params={"after": after or ""})


AREA = Area(
    name="money",
    router=router,
    console_nav=(NavItem("console.nav.money", "/console/money", Capability.VIEW),),
)
