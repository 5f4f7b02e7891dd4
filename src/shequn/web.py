"""Shared pieces of the HTTP layer: app state, authentication, permissions, error bodies."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, model_validator

from shequn.clock import Clock
from shequn.config import Settings
from shequn.context import Ctx
from shequn.db import Database
from shequn.errors import Forbidden, Unauthorized
from shequn.tenancy.rules import Permission, Principal
from shequn.tenancy.service import authenticate, cached_principal

API_PREFIX = "/api/v1"


@dataclass
class AppState:
    settings: Settings
    db: Database
    clock: Clock


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class Body(BaseModel):
    """Request bodies refuse unknown fields and coerce nothing (a float is not a fen)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        # PostgreSQL cannot store NUL in text; refuse it at the door on every backend.
        if _has_nul(data):
            raise ValueError("text must not contain NUL characters")
        return data


P = ParamSpec("P")
T = TypeVar("T")

# The use cases block on the database, so they run on worker threads. A plain executor costs a
# fraction of the generic thread hop of the framework, which showed up as a large share of the
# CPU of every request (docs/benchmarks.md).
WORKER_THREADS = 32
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _workers() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="shequn")
    return _executor


async def run_blocking(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking call on a worker thread, with the request's context (its language)."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_workers(), call)


def blocking(route: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """Declare a route whose body blocks (it calls a use case): it runs on a worker thread."""

    @functools.wraps(route)
    async def endpoint(*args: P.args, **kwargs: P.kwargs) -> T:
        return await run_blocking(route, *args, **kwargs)

    return endpoint


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.shequn
    return state


async def principal(request: Request) -> Principal:
    """Resolve the `Authorization: Bearer` key; a key seen moments ago costs neither a thread
    hop nor a query."""
    scheme, _, raw_key = (request.headers.get("authorization") or "").partition(" ")
    raw_key = raw_key.strip()
    if scheme.lower() != "bearer" or not raw_key:
        raise Unauthorized("api_key_missing")
    cached = cached_principal(raw_key)
    if cached is not None:
        return cached
    state = app_state(request)
    return await run_blocking(
        authenticate,
        db=state.db,
        raw_key=raw_key,
        cache_seconds=state.settings.api_key_cache_seconds,
    )


def requires(permission: Permission) -> Callable[..., Any]:
    # One plain dependency per route: each level of FastAPI dependencies costs about as much
    # as the query a cached key saves. The bearer scheme is declared in the OpenAPI document
    # by `bearer_security` instead.
    async def dependency(request: Request) -> Ctx:
        who = await principal(request)
        if not who.can(permission):
            raise Forbidden("permission_denied", permission=permission.value, role=who.role.value)
        state = app_state(request)
        return Ctx(db=state.db, clock=state.clock, tenant_id=who.tenant_id, actor=who.actor)

    return dependency


BEARER_SCHEME = "HTTPBearer"


def bearer_security(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare the API key in an OpenAPI document: a bearer scheme, required by every
    operation under the API prefix."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
    }
    for path, operations in schema.get("paths", {}).items():
        if path.startswith(API_PREFIX + "/"):
            for operation in operations.values():
                operation["security"] = [{BEARER_SCHEME: []}]
    return schema


Reader = Annotated[Ctx, Depends(requires(Permission.READ))]
Writer = Annotated[Ctx, Depends(requires(Permission.WRITE))]
Admin = Annotated[Ctx, Depends(requires(Permission.ADMIN))]


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, **extra}
