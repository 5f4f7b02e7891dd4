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

import email.message
import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, model_validator
from starlette.routing import BaseRoute, Route

from shequn.clock import Clock
from shequn.config import Settings
from shequn.context import Ctx
from shequn.db import Database
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


async def run_use_case(db: Database, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a use case without blocking the event loop (`Database.run`)."""
    return await db.run(fn, *args, **kwargs)


def blocking(route: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """Declare a route whose body calls use cases: it runs through `Database.run`, with the
    database of its context (`ctx`)."""

    @functools.wraps(route)
    async def endpoint(*args: P.args, **kwargs: P.kwargs) -> T:
        ctx = kwargs.get("ctx")
        assert isinstance(ctx, Ctx), "a blocking route takes its context as `ctx`"
        return await ctx.db.run(route, *args, **kwargs)

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
    return await state.db.run(
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
LeanEndpoint = Callable[[Request], Awaitable[Response]]


class LeanRoute(Route):
    """A route of the application like any other (matched in order, behind the same middleware
    and error handlers), whose endpoint takes the request itself; `documented` is what the
    OpenAPI document shows for it: the operation FastAPI would document for a route taking
    the body model, with the same path, name and docstring."""

    documented: APIRoute


def lean_post(
    router: APIRouter, path: str, *, body: type[BaseModel], status_code: int = 200
) -> Callable[[LeanEndpoint], LeanEndpoint]:
    """A POST route that reads its own body (`read_body`, `validate_body`) and returns encoded
    JSON (`json_response`); path parameters are in `request.path_params`."""

    def register(endpoint: LeanEndpoint) -> LeanEndpoint:
        full_path = router.prefix + path
        route = LeanRoute(full_path, endpoint, methods=["POST"], name=endpoint.__name__)
        route.documented = APIRoute(
            full_path,
            _signature_for_docs(endpoint, full_path, body),
            methods=["POST"],
            status_code=status_code,
            tags=list(router.tags),
            name=endpoint.__name__,
        )
        router.routes.append(route)
        return endpoint

    return register


def _signature_for_docs(
    endpoint: LeanEndpoint, path: str, body: type[BaseModel]
) -> Callable[..., dict[str, Any]]:
    """A callable that only describes the lean endpoint to FastAPI's OpenAPI generator: its
    path parameters, its body model, a JSON object as its answer. It is never called."""

    def described(**_: Any) -> dict[str, Any]:
        raise NotImplementedError("documentation only")

    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    parameters = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=str) for name in names
    ]
    parameters.append(inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=body))
    described.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=dict[str, Any]
    )
    described.__name__ = endpoint.__name__
    described.__doc__ = endpoint.__doc__
    return described


def documented_routes(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """`routes` as the OpenAPI generator should see them: each lean route by its description."""
    return [r.documented if isinstance(r, LeanRoute) else r for r in routes]


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
