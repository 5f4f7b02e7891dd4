"""The growth engine in the console: coupon templates (and issuing them by tag), points and what
they redeem, sharing programs and their rewards, fraud holds waiting for a decision, and an
agent's stock with its days of cover and buybacks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shequn.console.rules import Capability
from shequn.context import Ctx
from shequn.entrypoints.web.console_members import resolve_member
from shequn.entrypoints.web.forms import Form, bp_text, fen_text
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
from shequn.errors import DomainError, InvalidInput, NotFound
from shequn.growth.coupons.rules import CouponKind
from shequn.growth.coupons.service import create_template, issue_coupons, list_templates
from shequn.growth.decisions import cancel_hold, release_hold
from shequn.growth.holds.rules import HoldStatus
from shequn.growth.holds.service import list_holds
from shequn.growth.links.service import channel_counts
from shequn.growth.points.service import create_redemption_item, list_redemption_items
from shequn.growth.settings.service import get_growth_settings, update_growth_settings
from shequn.growth.sharing.service import create_program, list_programs, list_rewards
from shequn.growth.stock.service import agent_stock, buy_back
from shequn.i18n import translate
from shequn.insights.console_community import require_hold, stock_history
from shequn.members.service import get_member
from shequn.money import format_yuan

router = APIRouter(include_in_schema=False)

COUPON_KINDS = tuple(k.value for k in CouponKind)
# The rewards a program can be set up with from the console (a coupon or a tier upgrade is
# chosen from the lists of templates and tiers).
REWARDS = ("cashback", "fixed", "points", "coupon")
HOLD_STATUSES = tuple(s.value for s in HoldStatus)


# --- coupons ---------------------------------------------------------------------------------


async def _coupons_view(
    who: Console, *, form: Form | None = None, status: int = 200, focus: str = ""
) -> Response:
    templates = await who.run(list_templates)
    return render(
        who,
        "console/coupons.html",
        form=form or Form({"kind": "amount", "per_member_limit": "1"}),
        status=status,
        focus=focus,
        templates=templates,
        coupon_kinds=COUPON_KINDS,
    )


@router.get("/console/growth/coupons")
@page
async def coupons_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    return await _coupons_view(who)


@router.post("/console/growth/coupons")
@page
async def new_coupon(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who)
    name = form.text("coupon_name", required=True, max_length=60)
    kind = form.choice("kind", COUPON_KINDS)
    fields: dict[str, Any] = {"name": name, "kind": kind}
    if kind == "amount":
        fields["amount_off_fen"] = form.yuan("amount_off", required=True, min_fen=1)
    elif kind == "percent":
        fields["percent_off_bp"] = form.percent("percent_off", required=True)
        fields["max_discount_fen"] = form.yuan("max_discount", min_fen=1)
    fields["min_spend_fen"] = form.yuan("min_spend") or 0
    fields["valid_days"] = form.integer("valid_days", low=1, high=3_650)
    fields["total_limit"] = form.integer("total_limit", low=1, high=100_000_000)
    fields["per_member_limit"] = form.integer("per_member_limit", low=1, high=1_000) or 1
    fields["claim_code"] = form.text("claim_code", max_length=32)
    if not form.ok:
        return await _coupons_view(who, form=form, status=422, focus="new")
    try:
        await who.run(create_template, **fields)
    except DomainError as exc:
        form.refuse(
            exc,
            fields={
                "name": "coupon_name",
                "amount_off_fen": "amount_off",
                "percent_off_bp": "percent_off",
                "max_discount_fen": "max_discount",
                "min_spend_fen": "min_spend",
            },
        )
        return await _coupons_view(who, form=form, status=exc.status, focus="new")
    return redirect(
        who, "/console/growth/coupons", flash=translate("console.coupons.created", name=name)
    )


@router.post("/console/growth/coupons/{template_id}/issue")
@page
async def issue_coupon(request: Request, template_id: str) -> Response:
    who = await console_for(request, Capability.OPERATE)
    templates = await who.run(list_templates)
    if not any(t["id"] == template_id for t in templates):
        raise NotFound("coupon_template_not_found", id=template_id)
    form = await submitted(who)
    field = f"tag_{template_id}"
    tag = form.text(field, required=True, max_length=40)
    if not form.ok or tag is None:
        return await _coupons_view(who, form=form, status=422)
    try:
        issued = await who.run(issue_coupons, template_id=template_id, tag=tag)
    except DomainError as exc:
        form.refuse(exc, fields={"tag": field})
        if "_form" in form.errors:
            form.errors[field] = form.errors.pop("_form")
        return await _coupons_view(who, form=form, status=exc.status)
    return redirect(
        who,
        "/console/growth/coupons",
        flash=translate("console.coupons.issued", count=issued.get("issued", 0)),
    )


# --- points ----------------------------------------------------------------------------------


async def _points_view(who: Console, *, form: Form | None = None, status: int = 200) -> Response:
    items = await who.run(list_redemption_items)
    return render(who, "console/points.html", form=form or Form(), status=status, items=items)


@router.get("/console/growth/points")
@page
async def points_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    return await _points_view(who)


@router.post("/console/growth/points")
@page
async def new_redemption_item(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who)
    name = form.text("item_name", required=True, max_length=80)
    points = form.integer("points", low=1, high=10_000_000, required=True)
    stock = form.integer("stock", low=0, high=10_000_000)
    if not form.ok or name is None or points is None:
        return await _points_view(who, form=form, status=422)
    try:
        await who.run(create_redemption_item, name=name, points=points, stock=stock)
    except DomainError as exc:
        form.refuse(exc, fields={"name": "item_name"})
        return await _points_view(who, form=form, status=exc.status)
    return redirect(
        who, "/console/growth/points", flash=translate("console.points.created", name=name)
    )


# --- sharing programs ------------------------------------------------------------------------


async def _sharing_view(who: Console, *, form: Form | None = None, status: int = 200) -> Response:
    after = who.request.query_params.get("after") or None
    programs = await who.run(list_programs)
    try:
        rewards = await who.run(list_rewards, after=after, limit=50)
    except InvalidInput:
        rewards = await who.run(list_rewards, limit=50)
    templates = await who.run(list_templates)
    channels = await who.run(channel_counts)
    return render(
        who,
        "console/sharing.html",
        form=form or Form({"sharer_reward": "cashback"}),
        status=status,
        programs=programs,
        rewards=rewards,
        templates=templates,
        channels=channels,
        rewards_kinds=REWARDS,
        params={"after": after or ""},
    )


@router.get("/console/growth/sharing")
@page
async def sharing_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    return await _sharing_view(who)


@router.post("/console/growth/sharing")
@page
async def new_program(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who)
    name = form.text("program_name", required=True, max_length=60)
    reward = form.choice("sharer_reward", REWARDS)
    fields: dict[str, Any] = {"name": name, "sharer_reward": reward}
    if reward == "cashback":
        fields["cashback_bp"] = form.percent("cashback", required=True)
    elif reward == "fixed":
        fields["amount_fen"] = form.yuan("amount", required=True, min_fen=1)
    elif reward == "points":
        fields["points"] = form.integer("reward_points", low=1, high=10_000_000, required=True)
    elif reward == "coupon":
        fields["coupon_template_id"] = form.text("coupon_template", required=True, max_length=40)
    fields["cap_per_day"] = form.integer("cap_per_day", low=1, high=100_000)
    fields["first_order_only"] = form.checked("first_order_only")
    if not form.ok:
        return await _sharing_view(who, form=form, status=422)
    try:
        await who.run(create_program, **fields)
    except DomainError as exc:
        form.refuse(
            exc,
            fields={
                "name": "program_name",
                "cashback_bp": "cashback",
                "amount_fen": "amount",
                "points": "reward_points",
                "coupon_template_id": "coupon_template",
            },
        )
        return await _sharing_view(who, form=form, status=exc.status)
    return redirect(
        who, "/console/growth/sharing", flash=translate("console.sharing.created", name=name)
    )


# --- fraud holds -----------------------------------------------------------------------------


async def _holds_view(who: Console, *, form: Form | None = None, status: int = 200) -> Response:
    wanted = who.request.query_params.get("status", "held")
    shown = wanted if wanted in HOLD_STATUSES else "held"
    after = who.request.query_params.get("after") or None
    try:
        found = await who.run(list_holds, status=shown, after=after, limit=50)
    except InvalidInput:
        found = await who.run(list_holds, status=shown, limit=50)
    return render(
        who,
        "console/holds.html",
        form=form or Form(),
        status=status,
        found=found,
        shown=shown,
        statuses=HOLD_STATUSES,
        params={"status": shown, "after": after or ""},
    )


@router.get("/console/growth/holds")
@page
async def holds_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    return await _holds_view(who)


@router.post("/console/growth/holds/{hold_id}/{action}")
@page
async def hold_decision(request: Request, hold_id: str, action: str) -> Response:
    who = await console_for(request, Capability.OPERATE)
    if action not in ("release", "cancel"):
        raise InvalidInput("task_action_unknown", action=action)
    await who.run(require_hold, hold_id=hold_id)
    form = await submitted(who)
    field = f"reason_{hold_id}"
    reason = form.text(field, required=True, max_length=500)
    if not form.ok or reason is None:
        return await _holds_view(who, form=form, status=422)
    decide = release_hold if action == "release" else cancel_hold
    try:
        await who.run(decide, hold_id=hold_id, reason=reason)
    except DomainError as exc:
        if exc.status == 404:
            raise
        form.refuse(exc, fields={"reason": field})
        return await _holds_view(who, form=form, status=exc.status)
    return redirect(who, "/console/growth/holds", flash=translate(f"console.holds.done.{action}"))


# --- agent stock -----------------------------------------------------------------------------


async def _stock_view(
    who: Console, agent: str | None, *, form: Form | None = None, status: int = 200
) -> Response:
    form = form or Form({"agent": agent or ""})
    found = None
    member = None
    history: dict[str, Any] = {"orders": [], "buybacks": []}
    if agent:

        def look(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
            member_id = resolve_member(ctx, agent)
            return (
                get_member(ctx, member_id=member_id),
                agent_stock(ctx, member_id=member_id),
                stock_history(ctx, member_id=member_id),
            )

        try:
            member, found, history = await who.run(look)
        except DomainError as exc:
            form.refuse(exc, fields={"id": "agent", "member_id": "agent"})
            if "_form" in form.errors:
                form.errors["agent"] = form.errors.pop("_form")
    return render(
        who,
        "console/stock.html",
        form=form,
        status=status,
        stock=found,
        agent=member,
        history=history,
    )


@router.get("/console/growth/stock")
@page
async def stock_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    agent = (request.query_params.get("agent") or "").strip()[:64] or None
    return await _stock_view(who, agent)


@router.post("/console/growth/stock/{member_id}/buyback")
@page
async def stock_buyback(request: Request, member_id: str) -> Response:
    who = await console_for(request, Capability.OPERATE)
    await who.run(get_member, member_id=member_id)
    form = await submitted(who)
    sku = form.text("sku", required=True, max_length=64)
    quantity = form.integer("quantity", low=1, high=100_000, required=True)
    if not form.ok or sku is None or quantity is None:
        return await _stock_view(who, member_id, form=form, status=422)
    try:
        done = await who.run(buy_back, member_id=member_id, sku=sku, quantity=quantity)
    except DomainError as exc:
        form.refuse(exc, fields={"quantity": "quantity", "sku": "sku"})
        form.values.setdefault("agent", member_id)
        return await _stock_view(who, member_id, form=form, status=exc.status)
    return redirect(
        who,
        f"/console/growth/stock?agent={member_id}",
        flash=translate(
            "console.stock.bought_back", amount=format_yuan(int(done.get("amount_fen", 0)))
        ),
    )


# --- growth settings -------------------------------------------------------------------------

# Whole-number settings: (form field, setting, lowest, highest).
SETTING_COUNTS = (
    ("points_earn_bp", 0, 1_000_000),
    ("fen_per_point", 1, 10_000),
    ("points_expiry_days", 1, 3_650),
    ("stock_cover_limit_days", 1, 3_650),
    ("new_agent_monthly_sales", 1, 10_000_000),
    ("buyback_window_days", 0, 3_650),
    ("velocity_limit_per_hour", 1, 10_000),
)


def _settings_form(settings: dict[str, Any]) -> Form:
    values: dict[str, Any] = {name: settings[name] for name, _, _ in SETTING_COUNTS}
    values["short_link_base"] = settings["short_link_base"]
    values["points_cap"] = bp_text(settings["points_cap_bp"])
    values["buyback_price"] = bp_text(settings["buyback_price_bp"])
    values["min_first_stock_order"] = fen_text(settings["min_first_stock_order_fen"])
    return Form(values)


async def _settings_view(who: Console, *, form: Form | None = None, status: int = 200) -> Response:
    settings = await who.run(get_growth_settings)
    return render(
        who,
        "console/growth_settings.html",
        form=form or _settings_form(settings),
        status=status,
        settings=settings,
        counts=[name for name, _, _ in SETTING_COUNTS],
    )


@router.get("/console/growth/settings")
@page
async def growth_settings_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    return await _settings_view(who)


@router.post("/console/growth/settings")
@page
async def growth_settings_save(request: Request) -> Response:
    who = await console_for(request, Capability.ADMINISTER)
    form = await submitted(who)
    patch: dict[str, Any] = {}
    for name, low, high in SETTING_COUNTS:
        patch[name] = form.integer(name, low=low, high=high, required=True)
    patch["short_link_base"] = form.text("short_link_base", max_length=200) or ""
    patch["points_cap_bp"] = form.percent("points_cap", required=True)
    patch["buyback_price_bp"] = form.percent("buyback_price", required=True)
    patch["min_first_stock_order_fen"] = form.yuan("min_first_stock_order") or 0
    if not form.ok:
        return await _settings_view(who, form=form, status=422)
    try:
        await who.run(update_growth_settings, patch=patch)
    except DomainError as exc:
        form.refuse(
            exc,
            fields={
                "points_cap_bp": "points_cap",
                "buyback_price_bp": "buyback_price",
                "min_first_stock_order_fen": "min_first_stock_order",
            },
        )
        return await _settings_view(who, form=form, status=exc.status)
    return redirect(who, "/console/growth/settings", flash=translate("console.growth.saved"))


AREA = Area(
    name="growth",
    router=router,
    console_nav=(
        NavItem("console.nav.coupons", "/console/growth/coupons", Capability.VIEW),
        NavItem("console.nav.points", "/console/growth/points", Capability.VIEW),
        NavItem("console.nav.sharing", "/console/growth/sharing", Capability.VIEW),
        NavItem("console.nav.holds", "/console/growth/holds", Capability.VIEW),
        NavItem("console.nav.stock", "/console/growth/stock", Capability.VIEW),
        NavItem("console.nav.growth_settings", "/console/growth/settings", Capability.VIEW),
    ),
)
