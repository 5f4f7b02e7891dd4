"""The web console for operators and the H5 portal for agents and members: server-rendered
pages over the same services as the API, each area a module with its routes and navigation."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from shequn.entrypoints.web import (
    console_activities,
    console_auth,
    console_catalog,
    console_communities,
    console_community,
    console_content,
    console_dashboard,
    console_growth,
    console_import,
    console_members,
    console_money,
    console_orders,
    console_plans,
    console_programs,
    console_stock,
    console_users,
    portal,
    portal_more,
    portal_stock,
)
from shequn.entrypoints.web.kit import STATIC, Area, environment

# In the order of the console's navigation.
AREAS: tuple[Area, ...] = (
    console_auth.AREA,
    console_dashboard.AREA,
    console_members.AREA,
    console_catalog.AREA,
    console_orders.AREA,
    console_money.AREA,
    console_plans.AREA,
    console_communities.AREA,
    console_community.AREA,
    console_activities.AREA,
    console_programs.AREA,
    console_content.AREA,
    console_growth.AREA,
    console_stock.AREA,
    console_import.AREA,
    console_users.AREA,
    portal.AREA,
    portal_more.AREA,
    portal_stock.AREA,
)


def plotly_script() -> Path:
    """plotly.js as the plotly package ships it (the console loads nothing from elsewhere)."""
    return Path(str(resources.files("plotly").joinpath("package_data", "plotly.min.js")))


def mount_web(app: FastAPI) -> None:
    """Add the console's and the portal's routes and static files to `app`."""
    environment().globals["areas"] = AREAS
    for area in AREAS:
        app.router.routes.extend(area.router.routes)
    app.mount("/static/web", StaticFiles(directory=str(STATIC)), name="web-static")
    script = plotly_script()

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        return FileResponse(
            script,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )
