"""The dashboard: the period's sales, where they came from, the self-circulation funnel, the
commission cost, compliance status and what waits for an operator."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shequn.console.rules import Capability
from shequn.entrypoints.rendering import findings_list
from shequn.entrypoints.web.kit import Area, NavItem, console_for, page, render
from shequn.flows.plans import get_plan
from shequn.i18n import translate
from shequn.insights.console_community import open_alerts
from shequn.insights.console_dashboard import PERIODS, recent_dashboard

router = APIRouter(include_in_schema=False)

COLOURS = ("#2f6fde", "#23a36b", "#f0a020", "#9b59b6")


def _charts(data: dict[str, Any]) -> dict[str, Any]:
    """Plotly figures (as plain data for plotly.js) of the dashboard's series."""
    days = [d["day"] for d in data["series"]]
    layout = {
        "margin": {"l": 50, "r": 20, "t": 10, "b": 40},
        "height": 260,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": "system-ui, sans-serif", "size": 12},
        "legend": {"orientation": "h", "y": -0.2},
    }
    sales = {
        "data": [
            {
                "type": "bar",
                "x": days,
                "y": [d["paid_fen"] / 100 for d in data["series"]],
                "name": translate("console.dash.gmv_yuan"),
                "marker": {"color": COLOURS[0]},
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": days,
                "y": [d["orders"] for d in data["series"]],
                "name": translate("console.dash.paid_orders"),
                "yaxis": "y2",
                "marker": {"color": COLOURS[2]},
            },
        ],
        "layout": {
            **layout,
            # Days as numbers, the same in every language (plotly's month names are English).
            "xaxis": {"tickformat": "%m-%d", "hoverformat": "%Y-%m-%d"},
            "yaxis": {"title": {"text": "¥"}, "rangemode": "tozero"},
            "yaxis2": {"overlaying": "y", "side": "right", "rangemode": "tozero"},
        },
    }
    mix = data["mix"]
    revenue = {
        "data": [
            {
                "type": "pie",
                "hole": 0.5,
                "labels": [translate(f"console.dash.mix.{k}") for k in mix],
                "values": [v / 100 for v in mix.values()],
                "marker": {"colors": list(COLOURS[:3])},
                "sort": False,
            }
        ],
        "layout": {**layout, "showlegend": True},
    }
    steps = data["funnel"]
    funnel = {
        "data": [
            {
                "type": "funnel",
                "y": [translate(f"console.dash.funnel.{k}") for k in steps],
                "x": list(steps.values()),
                "marker": {"color": list(COLOURS)},
                "textinfo": "value+percent initial",
            }
        ],
        "layout": {**layout, "margin": {"l": 110, "r": 20, "t": 10, "b": 20}},
    }
    return {"sales": sales, "revenue": revenue, "funnel": funnel}


@router.get("/console/")
@page
async def dashboard_page(request: Request) -> Response:
    who = await console_for(request)
    if not who.can(Capability.VIEW):
        return render(who, "console/welcome.html")
    raw = request.query_params.get("days", "30")
    days = int(raw) if raw.isdigit() and int(raw) in PERIODS else 30
    fresh = request.query_params.get("fresh") == "1"
    data = await who.run(recent_dashboard, days=days, fresh=fresh)
    plan = (
        await who.run(get_plan, plan_id=data["active_plan_id"]) if data["active_plan_id"] else None
    )
    findings = findings_list(plan["findings"]) if plan else []
    alerts = await who.run(open_alerts)
    return render(
        who,
        "console/dashboard.html",
        data=data,
        charts=_charts(data),
        plan=plan,
        findings=findings,
        blocking=[f for f in findings if f["severity"] == "block"],
        periods=PERIODS,
        alerts=alerts,
    )


AREA = Area(
    name="dashboard",
    router=router,
    console_nav=(NavItem("console.nav.dashboard", "/console/"),),
)
