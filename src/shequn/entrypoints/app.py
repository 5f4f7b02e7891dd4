"""The FastAPI application, built by a factory from settings (nothing happens at import)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from shequn import __version__
from shequn.clock import Clock, SystemClock
from shequn.config import DEFAULT_SECRET, Settings, load_settings
from shequn.db import Database
from shequn.errors import DomainError, Unauthorized
from shequn.i18n import negotiate, set_locale, translate
from shequn.web import AppState, bearer_security, blocking, error_body

log = logging.getLogger("shequn.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class RequestGuardMiddleware:
    """Pick the response language from Accept-Language for the whole request, and refuse
    NUL characters in the path or query (no database can store them)."""

    def __init__(self, app: ASGIApp, default: str) -> None:
        self.app = app
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = None
            for name, value in scope.get("headers", []):
                if name == b"accept-language":
                    header = value.decode("latin-1")
                    break
            set_locale(negotiate(header, self.default))  # type: ignore[arg-type]
            raw = scope.get("raw_path") or b""
            query = scope.get("query_string") or b""
            if b"%00" in raw or b"%00" in query or "\x00" in scope.get("path", ""):
                response = JSONResponse(
                    error_body("bad_request", translate("error.bad_request")), status_code=400
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def domain_error_response(exc: DomainError) -> JSONResponse:
    """The answer to a request refused by a use case."""
    params = dict(exc.params)
    extra: dict[str, Any] = {}
    if "findings" in params:
        extra["findings"] = params.pop("findings")
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse(
        error_body(exc.code, translate(f"error.{exc.code}", **params), **extra),
        status_code=exc.status,
        headers=headers,
    )


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return domain_error_response(exc)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": [str(p) for p in e.get("loc", ())], "type": e.get("type", "")} for e in exc.errors()
    ]
    where = ", ".join(".".join(d["loc"]) for d in details[:5])
    return JSONResponse(
        error_body(
            "validation_error", translate("error.validation_error", fields=where), errors=details
        ),
        status_code=422,
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(code, translate(f"error.{code}")),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


def internal_error_response() -> JSONResponse:
    """The answer to a request that failed in a way nobody foresaw (the error is logged)."""
    return JSONResponse(
        error_body("internal_error", translate("error.internal_error")), status_code=500
    )


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return internal_error_response()


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    hot_routes: bool = True,
) -> FastAPI:
    """Build the API for `settings`; tests pass their own clock and database (and may leave
    out the fast answers to the two requests of a paid order, `hot_routes`)."""
    from shequn.catalog.api import router as catalog
    from shequn.distribution.api import router as distribution
    from shequn.entrypoints.hot_routes import FastAnswers, HotRoutes
    from shequn.events.api import router as events
    from shequn.members.api import router as members
    from shequn.orders.api import router as orders
    from shequn.settlement.api import router as settlement
    from shequn.tenancy.api import router as tenancy
    from shequn.tiers.api import router as tiers
    from shequn.wallet.api import router as wallet

    settings = settings or load_settings()
    if settings.environment == "production" and settings.secret_key == DEFAULT_SECRET:
        raise RuntimeError("refusing to start in production with the default SHEQUN_SECRET_KEY")
    database = db or Database.from_url(settings.database_url, pool_size=settings.db_pool_size)
    app = FastAPI(
        title="Shequn",
        version=__version__,
        description="Community-commerce engine: referral binding, product ladder, lawful "
        "commissions on a double-entry ledger.",
        openapi_url="/openapi.json",
        # The interactive docs are served from the installed package, never from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.shequn = AppState(settings=settings, db=database, clock=clock or SystemClock())
    # The routes are added to the application itself, busiest first: every request is matched
    # against the routes in order, and an included router puts several layers of matching
    # around each of its routes (a fifth of the CPU of a paid order went to finding the route).
    for router in (
        orders,
        members,
        wallet,
        catalog,
        events,
        distribution,
        tiers,
        settlement,
        tenancy,
    ):
        app.router.routes.extend(router.routes)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    if hot_routes:
        # Found by the HTTP protocol too (`shequn.entrypoints.http_protocol`), which answers
        # these requests before the application is called at all.
        app.state.fast_answers = FastAnswers(
            app.state.shequn,
            render_error=domain_error_response,
            render_internal_error=internal_error_response,
            default=settings.default_locale,
        )
        app.add_middleware(HotRoutes, answers=app.state.fast_answers)
    app.add_middleware(RequestGuardMiddleware, default=settings.default_locale)

    _mount_docs(app)
    _declare_bearer_key(app)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up (for a liveness probe)."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["ops"], response_model=None)
    @blocking
    def readyz() -> dict[str, str] | JSONResponse:
        """The database answers (for a readiness probe or a load balancer)."""
        try:
            with database.read() as tx:
                tx.execute(text("SELECT 1"))
        except SQLAlchemyError:
            log.warning("database unreachable", exc_info=True)
            return JSONResponse(
                error_body("database_unavailable", translate("error.database_unavailable")),
                status_code=503,
            )
        return {"status": "ready", "version": __version__}

    return app


def _declare_bearer_key(app: FastAPI) -> None:
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = bearer_security(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI at /docs, its script and style from the `swagger-ui-bundle` package."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Shequn API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )


def app_from_environment() -> FastAPI:
    """Entry point for `uvicorn --factory shequn.entrypoints.app:app_from_environment`."""
    return create_app(load_settings())
