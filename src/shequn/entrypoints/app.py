"""The FastAPI application, built by a factory from settings (nothing happens at import).

Every request, whichever route it is for, passes through the same application: the one
`EdgeMiddleware` (language, size limit, refused characters), the routes, and the same error
handlers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shequn import __version__
from shequn.clock import Clock, SystemClock
from shequn.compliance.rules import Finding
from shequn.config import DEFAULT_SECRET, Settings, load_settings
from shequn.db import Database, is_transient
from shequn.entrypoints.api.http import (
    AppState,
    bearer_security,
    describe_operations,
    documented_routes,
    error_body,
    error_responses,
    integer_bounds,
)
from shequn.entrypoints.api.shapes import ErrorOut, Shape
from shequn.entrypoints.rendering import (
    error_message,
    findings_list,
    validation_error_shown,
    validation_message,
)
from shequn.errors import DomainError, Unauthorized
from shequn.i18n import negotiate, set_locale, translate
from shequn.snapshot import Snapshot

log = logging.getLogger("shequn.api")

MAX_BODY_BYTES = 1 << 20  # 1 MiB: far above any order, far below what would hurt a worker

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


class EdgeMiddleware:
    """For every HTTP request: pick the response language from Accept-Language; refuse NUL
    characters in the path or query (no database can store them); refuse a body over
    `max_body` bytes, by its Content-Length before reading it, or, for a body sent without
    one, once it has arrived (so that a route that never reads its body refuses it too)."""

    def __init__(self, app: ASGIApp, default: str, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.default = default
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        language = None
        declared = None
        for name, value in scope["headers"]:
            if name == b"accept-language" and language is None:
                language = value.decode("latin-1")
            elif name == b"content-length":
                declared = value
        set_locale(negotiate(language, self.default))  # type: ignore[arg-type]
        raw = scope.get("raw_path") or b""
        query = scope.get("query_string") or b""
        if b"%00" in raw or b"%00" in query or "\x00" in scope.get("path", ""):
            await _refuse(scope, receive, send, 400, "bad_request")
            return
        if declared is not None:
            if declared.isdigit() and int(declared) > self.max_body:
                await _refuse(scope, receive, send, 413, "body_too_large")
                return
            await self.app(scope, receive, send)
            return
        body = await _whole_body(receive, self.max_body)
        if body is None:
            await _refuse(scope, receive, send, 413, "body_too_large")
            return
        await self.app(scope, _replaying(body, receive), send)


async def _whole_body(receive: Receive, limit: int) -> list[Message] | None:
    """The messages of a body sent without a length, or None once it passes `limit` bytes."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            return messages


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """`receive` that gives the messages already read first."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str) -> None:
    response = JSONResponse(error_body(code, translate(f"error.{code}")), status_code=status)
    await response(scope, receive, send)


def domain_error_response(exc: DomainError) -> JSONResponse:
    """The answer to a request refused by a use case."""
    params = dict(exc.params)
    extra: dict[str, Any] = {}
    if "findings" in params:
        found: list[Finding] = params.pop("findings")
        extra["findings"] = findings_list(found)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse(
        error_body(exc.code, error_message(exc, params), **extra),
        status_code=exc.status,
        headers=headers,
    )


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return domain_error_response(exc)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    shown = [validation_error_shown(e) for e in exc.errors()]
    return JSONResponse(
        error_body("validation_error", validation_message(shown), errors=shown),
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


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    if is_transient(exc):
        # The database kept giving up the transaction (deadlocks) even after the retries.
        log.warning("use case gave up after retries", exc_info=exc)
        return JSONResponse(
            error_body("database_busy", translate("error.database_busy")),
            status_code=503,
            headers={"Retry-After": "1"},
        )
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(
        error_body("internal_error", translate("error.internal_error")), status_code=500
    )


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
) -> FastAPI:
    """Build the API for `settings`; tests pass their own clock and database."""
    from shequn.entrypoints.api import ROUTERS
    from shequn.entrypoints.web import mount_web

    settings = settings or load_settings()
    if settings.environment == "production" and settings.secret_key == DEFAULT_SECRET:
        raise RuntimeError("refusing to start in production with the default SHEQUN_SECRET_KEY")
    database = db or Database.from_url(settings.database_url, pool_size=settings.db_pool_size)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            # The connections this event loop opened end with it.
            await database.close_loop_connections()

    app = FastAPI(
        lifespan=lifespan,
        title="Shequn",
        version=__version__,
        description="Community-commerce engine: referral binding, product ladder, lawful "
        "commissions on a double-entry ledger.",
        openapi_url="/openapi.json",
        # The interactive docs are served from the installed package, never from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.shequn = AppState(
        settings=settings, db=database, clock=clock or SystemClock(), snapshot=Snapshot()
    )
    # The routes are added to the application itself, busiest first: every request is matched
    # against the routes in order, and an included router puts several layers of matching
    # around each of its routes.
    for router in ROUTERS:
        app.router.routes.extend(router.routes)
    mount_web(app)  # the console and the portal, after every API route
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(EdgeMiddleware, default=settings.default_locale)

    _mount_docs(app)
    _declare_openapi(app)

    @app.get("/healthz", tags=["ops"], response_model=Health)
    async def healthz() -> dict[str, str]:
        """Tell whether the process is up

        For a liveness probe: it answers without touching the database, and needs no key."""
        return {"status": "ok", "version": __version__}

    @app.get(
        "/readyz",
        tags=["ops"],
        response_model=Readiness,
        responses={
            503: {
                "model": ErrorOut,
                "description": "The database does not answer (`database_unavailable`).",
            }
        },
    )
    async def readyz() -> dict[str, str] | JSONResponse:
        """Tell whether the database answers

        For a readiness probe or a load balancer: it runs one trivial query, and needs no
        key."""
        try:
            await database.run(database.ping)
        except SQLAlchemyError:
            log.warning("database unreachable", exc_info=True)
            return JSONResponse(
                error_body("database_unavailable", translate("error.database_unavailable")),
                status_code=503,
            )
        return {"status": "ready", "version": __version__}

    return app


class Health(Shape):
    status: Literal["ok"]
    version: str = Field(description="The running Shequn's version.")


class Readiness(Shape):
    status: Literal["ready"]
    version: str = Field(description="The running Shequn's version.")


def _declare_openapi(app: FastAPI) -> None:
    """The OpenAPI document: every route (a lean route by its description), each operation's
    summary and description from its docstring, the error every refused request gets, and
    the bearer key on every API operation. Built once, at its first request."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            routes = documented_routes(app.routes)
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=routes,
            )
            describe_operations(schema, routes)
            app.openapi_schema = bearer_security(error_responses(integer_bounds(schema)))
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
