"""Commission plans: the versions, an editor whose compliance findings (with their citations)
show beside the fields they concern, and activation, refused while a finding blocks. Also the
compliance report of the live data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shequn.compliance.service import compliance_report
from shequn.console.rules import Capability
from shequn.distribution.plans import build_plan_spec
from shequn.entrypoints.rendering import error_message, findings_list, findings_shown
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
from shequn.errors import DomainError
from shequn.flows.console_plans import preview_plan
from shequn.flows.plans import activate_plan, create_plan, get_plan, list_plans
from shequn.flows.plans_simulation import simulate_plan
from shequn.flows.tiers import list_tiers
from shequn.i18n import translate

router = APIRouter(include_in_schema=False)

LEVELS = (1, 2, 3)
SCOPES = ("all", "ladder_role", "category", "product")
MODES = ("levels", "differential")
RELEASES = ("on_close", "on_payment")
# Which field of the editor a compliance rule is about.
RULE_FIELDS = {
    "commission_depth": "depth",
    "three_levels": "depth",
    "total_commission": "levels",
    "recruitment_reward": "signup_reward",
    "entry_fee": "qualification_sku",
    "headcount_upgrade": "tiers",
    "team_volume": "team_volume_bonus",
    "unsettled_commission": "release",
}
# Which field a refusal of the plan's shape is about.
ERROR_FIELDS = {
    "signup_reward_fen": "signup_reward",
    "fixed_fen": "levels",
}
ERROR_CODE_FIELDS = {
    "plan_depth_invalid": "depth",
    "plan_depth_exceeded": "depth",
    "rule_level_beyond_depth": "depth",
    "rule_level_invalid": "levels",
    "rule_scope_invalid": "levels",
    "rule_duplicate": "levels",
    "plan_levels_required": "levels",
    "tier_rates_only_differential": "tier_rates",
    "plan_tier_rates_required": "tier_rates",
    "tier_rate_duplicate": "tier_rates",
    "product_not_found": "qualification_sku",
    "ladder_role_invalid": "levels",
}


@router.get("/console/plans")
@page
async def plans_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    plans = [findings_shown(p) for p in await who.run(list_plans)]
    plans.reverse()
    return render(who, "console/plans.html", plans=plans)


def _plan_form(plan: dict[str, Any] | None) -> Form:
    if plan is None:
        return Form(
            {"mode": "levels", "depth": "2", "release": "on_close", "rate_1": "10", "rate_2": "5"}
        )
    values: dict[str, Any] = {
        "name": plan["name"],
        "mode": plan["mode"],
        "depth": plan["depth"],
        "peer_bonus": bp_text(plan["peer_bonus_bp"]) if plan["peer_bonus_bp"] else "",
        "signup_reward": fen_text(plan["signup_reward_fen"]) if plan["signup_reward_fen"] else "",
        "qualification_sku": plan["qualification_sku"] or "",
        "team_volume_bonus": bp_text(plan["team_volume_bonus_bp"])
        if plan["team_volume_bonus_bp"]
        else "",
        "release": plan["release"],
    }
    for rule in plan["levels"]:
        n = rule["level"]
        values[f"rate_{n}"] = bp_text(rule["rate_bp"]) if rule["rate_bp"] else ""
        values[f"fixed_{n}"] = fen_text(rule["fixed_fen"]) if rule["fixed_fen"] else ""
        values[f"scope_{n}"] = rule["scope"]["kind"]
        values[f"scope_value_{n}"] = rule["scope"]["value"] or ""
    for rate in plan["tier_rates"]:
        values[f"tier_rate_{rate['tier_id']}"] = bp_text(rate["rate_bp"])
    return Form(values)


def _spec_input(form: Form, tiers: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The plan as typed, in the form `build_plan_spec` takes (None if a field is wrong)."""
    mode = form.choice("mode", MODES)
    depth = form.integer("depth", low=1, high=3, required=True)
    levels = []
    for n in LEVELS:
        rate = form.percent(f"rate_{n}")
        fixed = form.yuan(f"fixed_{n}")
        if rate is None and fixed is None:
            continue
        scope = form.choice(f"scope_{n}", SCOPES, required=False) or "all"
        value = form.text(f"scope_value_{n}", max_length=64)
        levels.append(
            {
                "level": n,
                "rate_bp": rate or 0,
                "fixed_fen": fixed or 0,
                "scope": {"kind": scope, "value": value if scope != "all" else None},
            }
        )
    tier_rates = []
    for tier in tiers:
        rate = form.percent(f"tier_rate_{tier['id']}")
        if rate is not None:
            tier_rates.append({"tier_id": tier["id"], "rate_bp": rate})
    peer = form.percent("peer_bonus")
    signup = form.yuan("signup_reward")
    team = form.percent("team_volume_bonus")
    release = form.choice("release", RELEASES)
    if not form.ok or mode is None or release is None:
        return None
    return {
        "mode": mode,
        "depth": depth,
        "levels": levels if mode == "levels" else [],
        "tier_rates": tier_rates if mode == "differential" else [],
        "peer_bonus_bp": peer or 0,
        "signup_reward_fen": signup or 0,
        "qualification_sku": form.text("qualification_sku", max_length=64),
        "team_volume_bonus_bp": team or 0,
        "release": release,
    }


def _place_findings(findings: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    placed: dict[str, list[dict[str, Any]]] = {}
    for f in findings:
        placed.setdefault(RULE_FIELDS.get(f["rule"], "tiers"), []).append(f)
    return placed


def _refuse(form: Form, exc: DomainError) -> None:
    name = ERROR_CODE_FIELDS.get(exc.code)
    if name is not None:
        form.errors.setdefault(name, error_message(exc))
    else:
        form.refuse(exc, fields=ERROR_FIELDS)


async def _editor(
    who: Console,
    form: Form,
    *,
    findings: list[dict[str, Any]] | None = None,
    total_bp: int | None = None,
    status: int = 200,
    checked: bool = False,
) -> Response:
    tiers = await who.run(list_tiers)
    shown = findings or []
    return render(
        who,
        "console/plan_edit.html",
        form=form,
        tiers=tiers,
        levels=LEVELS,
        scopes=SCOPES,
        findings=shown,
        placed=_place_findings(shown),
        blocking=[f for f in shown if f["severity"] == "block"],
        total_bp=total_bp,
        checked=checked,
        status=status,
    )


@router.get("/console/plans/new")
@page
async def new_plan_page(request: Request) -> Response:
    who = await console_for(request, Capability.ADMINISTER)
    source = request.query_params.get("from")
    plan = await who.run(get_plan, plan_id=source) if source else None
    return await _editor(who, _plan_form(plan))


@router.post("/console/plans/new")
@page
async def new_plan(request: Request) -> Response:
    who = await console_for(request, Capability.ADMINISTER)
    form = await submitted(who)
    tiers = await who.run(list_tiers)
    name = form.text("name", max_length=80)
    data = _spec_input(form, tiers)
    if data is None:
        return await _editor(who, form, status=422)
    try:
        spec = build_plan_spec(**data)
        if form.get("intent") != "save":
            preview = await who.run(preview_plan, spec=spec)
            return await _editor(
                who,
                form,
                findings=findings_list(preview["findings"]),
                total_bp=preview["nominal_total_bp"],
                checked=True,
            )
        created = await who.run(create_plan, spec=spec, name=name)
    except DomainError as exc:
        _refuse(form, exc)
        return await _editor(who, form, status=exc.status)
    return redirect(
        who,
        f"/console/plans/{created['id']}",
        flash=translate("console.plans.saved", version=created["version"]),
    )


async def _plan_page(
    who: Console, plan_id: str, *, error: str | None = None, status: int = 200
) -> Response:
    plan = findings_shown(await who.run(get_plan, plan_id=plan_id))
    tiers = {t["id"]: t["name"] for t in await who.run(list_tiers)}
    query = who.request.query_params
    sim_form = Form({"sim_from": query.get("sim_from", ""), "sim_to": query.get("sim_to", "")})
    simulation = None
    if query.get("simulate"):
        start = sim_form.text("sim_from", required=True, max_length=40)
        end = sim_form.text("sim_to", required=True, max_length=40)
        if sim_form.ok and start is not None and end is not None:
            try:
                simulation = await who.run(
                    simulate_plan, plan_id=plan_id, start=start, end=end, limit=200
                )
            except DomainError as exc:
                sim_form.refuse(exc, fields={"start": "sim_from", "end": "sim_to"})
                if "_form" in sim_form.errors:
                    sim_form.errors["sim_from"] = sim_form.errors.pop("_form")
    names = {m["member_id"]: m["name"] for m in (simulation or {}).get("members", [])}
    return render(
        who,
        "console/plan.html",
        plan=plan,
        tiers=tiers,
        blocking=[f for f in plan["findings"] if f["severity"] == "block"],
        error=error,
        status=status,
        sim_form=sim_form,
        simulation=simulation,
        names=names,
    )


@router.get("/console/plans/{plan_id}")
@page
async def plan_page(request: Request, plan_id: str) -> Response:
    who = await console_for(request, Capability.VIEW)
    return await _plan_page(who, plan_id)


@router.post("/console/plans/{plan_id}/activate")
@page
async def plan_activate(request: Request, plan_id: str) -> Response:
    who = await console_for(request, Capability.ADMINISTER)
    await submitted(who)
    try:
        plan = await who.run(activate_plan, plan_id=plan_id)
    except DomainError as exc:
        if exc.code != "plan_blocked":
            raise
        params = {k: v for k, v in exc.params.items() if k != "findings"}
        return await _plan_page(who, plan_id, error=error_message(exc, params), status=409)
    return redirect(
        who,
        f"/console/plans/{plan_id}",
        flash=translate("console.plans.activated", version=plan["version"]),
    )


@router.get("/console/compliance")
@page
async def compliance_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    report = findings_shown(await who.run(compliance_report))
    return render(who, "console/compliance.html", report=report)


AREA = Area(
    name="plans",
    router=router,
    console_nav=(
        NavItem("console.nav.plans", "/console/plans", Capability.VIEW),
        NavItem("console.nav.compliance", "/console/compliance", Capability.VIEW),
    ),
)
