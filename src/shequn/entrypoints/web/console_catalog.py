"""Catalog and ladder: products with their ladder role and tier prices, and the tiers."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shequn.catalog.service import create_product, get_product, list_products, update_product
from shequn.console.rules import Capability
from shequn.entrypoints.rendering import error_message
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
from shequn.errors import DomainError, NotFound
from shequn.flows.tiers import create_tier, list_tiers, update_tier
from shequn.flows.tiers_evaluation import evaluate_all
from shequn.i18n import translate

router = APIRouter(include_in_schema=False)

LADDER_ROLES = ("bait", "core", "partner")
PRODUCT_FIELDS = {"price_fen": "price", "ladder_role": "ladder_role", "tier_id": "_form"}
TIER_FIELDS = {"discount_bp": "discount"}


def tier_rows(tiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tiers as the catalog shows them (privileges read from where the tier view keeps
    them)."""
    rows = []
    for tier in tiers:
        privileges = tier.get("privileges") or tier
        rows.append(
            {
                "id": tier["id"],
                "name": tier["name"],
                "rank": tier["rank"],
                "discount_bp": int(privileges.get("discount_bp", 0)),
                "may_distribute": bool(privileges.get("may_distribute", False)),
                "member_count": int(tier.get("member_count", 0)),
            }
        )
    return rows


@router.get("/console/catalog")
@page
async def catalog_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    role = request.query_params.get("role") or None
    products = await who.run(list_products, ladder_role=role if role in LADDER_ROLES else None)
    tiers = tier_rows(await who.run(list_tiers))
    return render(
        who,
        "console/catalog.html",
        products=products,
        tiers=tiers,
        role=role,
        roles=LADDER_ROLES,
        tier_names={t["id"]: t["name"] for t in tiers},
    )


def _product_values(form: Form, tiers: list[dict[str, Any]], *, new: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if new:
        values["sku"] = form.text("sku", required=True, max_length=64)
    values["name"] = form.text("name", required=True, max_length=120)
    values["price_fen"] = form.yuan("price", required=True)
    values["ladder_role"] = form.choice("ladder_role", LADDER_ROLES)
    values["category"] = form.text("category", max_length=40)
    values["active"] = form.checked("active")
    prices = []
    for tier in tiers:
        member = form.yuan(f"member_price_{tier['id']}")
        wholesale = form.yuan(f"wholesale_price_{tier['id']}")
        if member is not None or wholesale is not None:
            prices.append(
                {
                    "tier_id": tier["id"],
                    "member_price_fen": member,
                    "wholesale_price_fen": wholesale,
                }
            )
    values["tier_prices"] = prices
    return values


def _product_form(product: dict[str, Any]) -> Form:
    values: dict[str, Any] = {
        "sku": product["sku"],
        "name": product["name"],
        "price": fen_text(product["price_fen"]),
        "ladder_role": product["ladder_role"],
        "category": product["category"] or "",
        "active": "on" if product["active"] else "",
    }
    for p in product["tier_prices"]:
        values[f"member_price_{p['tier_id']}"] = fen_text(p["member_price_fen"])
        values[f"wholesale_price_{p['tier_id']}"] = fen_text(p["wholesale_price_fen"])
    return Form(values)


async def _product_editor(
    who: Console, form: Form, *, sku: str | None, status: int = 200
) -> Response:
    tiers = await who.run(list_tiers)
    return render(
        who,
        "console/product.html",
        form=form,
        sku=sku,
        tiers=tiers,
        roles=LADDER_ROLES,
        status=status,
    )


@router.get("/console/catalog/new")
@page
async def new_product_page(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    return await _product_editor(who, Form({"ladder_role": "core", "active": "on"}), sku=None)


@router.post("/console/catalog/new")
@page
async def new_product(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who)
    tiers = await who.run(list_tiers)
    values = _product_values(form, tiers, new=True)
    if not form.ok:
        return await _product_editor(who, form, sku=None, status=422)
    try:
        created = await who.run(create_product, **values)
    except DomainError as exc:
        form.refuse(exc, fields=PRODUCT_FIELDS)
        return await _product_editor(who, form, sku=None, status=exc.status)
    return redirect(
        who, "/console/catalog", flash=translate("console.catalog.created", sku=created["sku"])
    )


@router.get("/console/catalog/{sku}")
@page
async def product_page(request: Request, sku: str) -> Response:
    who = await console_for(request, Capability.VIEW)
    product = await who.run(get_product, sku=sku)
    return await _product_editor(who, _product_form(product), sku=product["sku"])


@router.post("/console/catalog/{sku}")
@page
async def product_save(request: Request, sku: str) -> Response:
    who = await console_for(request, Capability.OPERATE)
    await who.run(get_product, sku=sku)
    form = await submitted(who)
    tiers = await who.run(list_tiers)
    values = _product_values(form, tiers, new=False)
    if not form.ok:
        return await _product_editor(who, form, sku=sku, status=422)
    try:
        await who.run(update_product, sku=sku, **values)
    except DomainError as exc:
        form.refuse(exc, fields=PRODUCT_FIELDS)
        return await _product_editor(who, form, sku=sku, status=exc.status)
    return redirect(who, "/console/catalog", flash=translate("console.catalog.saved", sku=sku))


CRITERIA_ROWS = 3
CRITERION_KINDS = ("spend", "single_order", "bought", "direct_customers", "team_size", "fact")
AMOUNT_KINDS = ("spend", "single_order")
WINDOWED_KINDS = ("spend", "single_order", "bought", "fact")


def _criterion(form: Form, i: int) -> dict[str, Any] | None:
    """Row `i` of the criteria as the tier's JSON form (None: the row is left empty)."""
    kind = form.choice(f"c{i}_kind", CRITERION_KINDS, required=False)
    if kind is None:
        return None
    name = f"c{i}_value"
    atom: dict[str, Any] = {"kind": kind}
    if kind in AMOUNT_KINDS:
        atom["min_fen"] = form.yuan(name, required=True, min_fen=1)
    elif kind == "bought":
        atom["sku"] = form.text(name, required=True, max_length=64)
    elif kind == "fact":
        atom["event_type"] = form.text(name, required=True, max_length=64)
    else:
        atom["min_count"] = form.integer(name, low=1, high=10_000_000, required=True)
    if kind in WINDOWED_KINDS:
        window = form.integer(f"c{i}_window", low=1, high=3_650)
        if window is not None:
            atom["window_days"] = window
    return atom


def _tier_values(form: Form) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": form.text("name", required=True, max_length=40),
        "rank": form.integer("rank", low=1, high=100, required=True),
        "discount_bp": form.percent("discount") or 0,
        "may_distribute": form.checked("may_distribute"),
    }
    rows = [a for a in (_criterion(form, i) for i in range(1, CRITERIA_ROWS + 1)) if a]
    match = form.choice("match", ("all_of", "any_of"), required=False) or "all_of"
    if rows:
        values["criteria"] = rows[0] if len(rows) == 1 else {"kind": match, "of": rows}
    elif form.get("had_criteria"):
        values["criteria"] = None
    return values


def _criteria_form(criteria: dict[str, Any] | None) -> dict[str, str]:
    """The criteria rows of the form from a tier's tree (a group of atoms, or one atom)."""
    if not criteria:
        return {}
    items = criteria.get("of") if criteria["kind"] in ("all_of", "any_of") else [criteria]
    out: dict[str, str] = {"match": criteria["kind"] if "of" in criteria else "all_of"}
    out["had_criteria"] = "1"
    for i, atom in enumerate((items or [])[:CRITERIA_ROWS], start=1):
        if "of" in atom:
            continue
        out[f"c{i}_kind"] = atom["kind"]
        if "min_fen" in atom:
            out[f"c{i}_value"] = fen_text(atom["min_fen"])
        else:
            out[f"c{i}_value"] = str(
                atom.get("sku") or atom.get("event_type") or atom.get("min_count") or ""
            )
        if atom.get("window_days"):
            out[f"c{i}_window"] = str(atom["window_days"])
    return out


async def _tier_editor(
    who: Console, form: Form, *, tier_id: str | None, status: int = 200
) -> Response:
    return render(
        who,
        "console/tier.html",
        form=form,
        tier_id=tier_id,
        status=status,
        rows=range(1, CRITERIA_ROWS + 1),
        kinds=CRITERION_KINDS,
    )


@router.get("/console/tiers/new")
@page
async def new_tier_page(request: Request) -> Response:
    who = await console_for(request, Capability.ADMINISTER)
    return await _tier_editor(who, Form(), tier_id=None)


@router.post("/console/tiers/new")
@page
async def new_tier(request: Request) -> Response:
    who = await console_for(request, Capability.ADMINISTER)
    form = await submitted(who)
    values = _tier_values(form)
    if not form.ok:
        return await _tier_editor(who, form, tier_id=None, status=422)
    try:
        created = await who.run(create_tier, **values)
    except DomainError as exc:
        _refuse_tier(form, exc)
        return await _tier_editor(who, form, tier_id=None, status=exc.status)
    return redirect(
        who, "/console/catalog", flash=translate("console.tiers.created", name=created["name"])
    )


@router.post("/console/tiers/evaluate")
@page
async def tiers_evaluate(request: Request) -> Response:
    """Evaluate every member against the tiers' criteria now, as the nightly batch does."""
    who = await console_for(request, Capability.ADMINISTER)
    await submitted(who)
    done = await who.run(evaluate_all)
    return redirect(
        who,
        "/console/catalog",
        flash=translate(
            "console.tiers.evaluated",
            members=done["members"],
            upgraded=done["upgraded"],
            demoted=done["demoted"],
        ),
    )


async def _tier(who: Console, tier_id: str) -> dict[str, Any]:
    found = [t for t in tier_rows(await who.run(list_tiers)) if t["id"] == tier_id]
    if not found:
        raise NotFound("tier_not_found", id=tier_id)
    return found[0]


@router.get("/console/tiers/{tier_id}")
@page
async def tier_page(request: Request, tier_id: str) -> Response:
    who = await console_for(request, Capability.ADMINISTER)
    tier = await _tier(who, tier_id)
    form = Form(
        {
            "name": tier["name"],
            "rank": tier["rank"],
            "discount": bp_text(tier["discount_bp"]),
            "may_distribute": "on" if tier["may_distribute"] else "",
            **_criteria_form(tier.get("criteria")),
        }
    )
    return await _tier_editor(who, form, tier_id=tier_id)


@router.post("/console/tiers/{tier_id}")
@page
async def tier_save(request: Request, tier_id: str) -> Response:
    who = await console_for(request, Capability.ADMINISTER)
    await _tier(who, tier_id)
    form = await submitted(who)
    values = _tier_values(form)
    if not form.ok:
        return await _tier_editor(who, form, tier_id=tier_id, status=422)
    try:
        await who.run(update_tier, tier_id=tier_id, **values)
    except DomainError as exc:
        _refuse_tier(form, exc)
        return await _tier_editor(who, form, tier_id=tier_id, status=exc.status)
    return redirect(who, "/console/catalog", flash=translate("console.tiers.saved"))


def _refuse_tier(form: Form, exc: DomainError) -> None:
    """A refusal beside its field; one of the criteria (`criteria.of[1].min_fen`) beside the
    value of its row."""
    named = exc.params.get("field")
    if isinstance(named, str) and named.startswith("criteria"):
        found = re.search(r"of\[(\d+)\]", named)
        row = int(found.group(1)) + 1 if found else 1
        form.errors.setdefault(f"c{row}_value", error_message(exc))
        return
    form.refuse(exc, fields=TIER_FIELDS)


AREA = Area(
    name="catalog",
    router=router,
    console_nav=(NavItem("console.nav.catalog", "/console/catalog", Capability.VIEW),),
)
