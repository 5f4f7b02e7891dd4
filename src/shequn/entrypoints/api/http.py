"""What every route shares: the application's state, request bodies, authentication and
permissions, running use cases off the event loop, and the two ways a route reads its body.

Most routes are plain FastAPI definitions: `ctx: Writer` authenticates, the body model
validates, the returned dict is the response. A route that every sale goes through is written
lean inside its own definition (`lean_post`): it takes the request, reads and validates its
body by hand with the same model, authenticates in the function and returns the JSON already
encoded, so FastAPI's per-request dependency solving and response validation are not paid; its
OpenAPI document still declares the body and the response.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.message
import functools
import json
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, model_validator

from shequn.clock import Clock
from shequn.config import Settings
from shequn.context import Ctx
from shequn.db import Database, retrying
from shequn.errors import Forbidden, Unauthorized
from shequn.snapshot import Snapshot
from shequn.tenancy.rules import Permission, Principal
from shequn.tenancy.service import authenticate, cached_principal

API_PREFIX = "/api/v1"


@dataclass
class AppState:
    settings: Settings
    db: Database
    clock: Clock
    snapshot: Snapshot


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

# The use cases block on the database, so they run on worker threads, never on the event
# loop. A plain executor costs a fraction of the framework's generic thread hop.
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
    """Run a use case on a worker thread, with the request's context (its language), again
    if the database gave up its transaction to break a deadlock (`shequn.db.retrying`)."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, retrying, fn, *args, **kwargs)
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


async def authorize(request: Request, permission: Permission) -> Ctx:
    """The context of a request whose key has `permission`."""
    who = await principal(request)
    if not who.can(permission):
        raise Forbidden("permission_denied", permission=permission.value, role=who.role.value)
    state = app_state(request)
    return Ctx(
        db=state.db,
        clock=state.clock,
        tenant_id=who.tenant_id,
        actor=who.actor,
        snapshot=state.snapshot,
    )


def requires(permission: Permission) -> Callable[..., Any]:
    # One plain dependency per route: each level of FastAPI dependencies costs about as much
    # as the query a cached key saves. The bearer scheme is declared in the OpenAPI document
    # by `bearer_security` instead.
    async def dependency(request: Request) -> Ctx:
        return await authorize(request, permission)

    return dependency


Reader = Annotated[Ctx, Depends(requires(Permission.READ))]
Writer = Annotated[Ctx, Depends(requires(Permission.WRITE))]
Admin = Annotated[Ctx, Depends(requires(Permission.ADMIN))]

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


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, **extra}


# --- lean routes ----------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)
LEAN_BODY = "__shequn_body_model__"
_VALIDATION_ERROR = {
    "description": "Validation Error",
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
    },
}


def lean_post(
    router: APIRouter, path: str, *, body: type[BaseModel], status_code: int = 200
) -> Callable[[Callable[..., Awaitable[Response]]], Callable[..., Awaitable[Response]]]:
    """A POST route that reads its own body (`read_body`) and returns encoded JSON: its
    OpenAPI document declares `body` as the request body, a JSON object as the response and
    the validation error, as FastAPI does for a route that takes the model."""

    def register(
        endpoint: Callable[..., Awaitable[Response]],
    ) -> Callable[..., Awaitable[Response]]:
        setattr(endpoint, LEAN_BODY, body)
        router.post(
            path,
            status_code=status_code,
            response_model=dict[str, Any],
            responses={422: _VALIDATION_ERROR},
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{body.__name__}"}
                        }
                    },
                }
            },
        )(endpoint)
        return endpoint

    return register


class RawBody:
    """A request's body as read, for `validate_body` once the caller is authenticated."""

    __slots__ = ("data", "raw")

    def __init__(self, raw: bytes, data: Any) -> None:
        self.raw = raw
        self.data = data


_NOT_JSON = object()


async def read_body(request: Request, model: type[M]) -> M | RawBody:
    """The body validated by `model`, or, if it does not validate, what `validate_body` turns
    into FastAPI's own answer. A body that is not JSON at all is refused here, as FastAPI
    refuses it before it authenticates."""
    raw = await request.body()
    content_type = request.headers.get("content-type")
    if content_type is not None and content_type.split(";", 1)[0].strip().lower() == (
        "application/json"
    ):
        try:
            return model.model_validate_json(raw)
        except ValidationError:
            pass
    data: Any = _NOT_JSON
    if raw:
        message = email.message.Message()
        message["content-type"] = content_type or ""
        subtype = message.get_content_subtype()
        if (
            content_type
            and message.get_content_maintype() == "application"
            and (subtype == "json" or subtype.endswith("+json"))
        ):
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise RequestValidationError(
                    [
                        {
                            "type": "json_invalid",
                            "loc": ("body", exc.pos),
                            "msg": "JSON decode error",
                            "input": {},
                            "ctx": {"error": exc.msg},
                        }
                    ]
                ) from exc
    return RawBody(raw, data)


def validate_body(model: type[M], body: M | RawBody) -> M:
    """The body as `model` reads it, or the validation error FastAPI would answer."""
    if isinstance(body, BaseModel):
        return body
    if not body.raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    value = body.raw if body.data is _NOT_JSON else body.data
    try:
        return model.model_validate(value, from_attributes=True)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


_JSON_OBJECT = TypeAdapter(dict[str, Any])


def json_response(data: dict[str, Any], status_code: int, *, replayed: bool = False) -> Response:
    """`data` encoded as a route returning it would encode it; `Idempotent-Replayed: true`
    when the request repeated an earlier one."""
    response = Response(
        _JSON_OBJECT.dump_json(data), status_code=status_code, media_type="application/json"
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
