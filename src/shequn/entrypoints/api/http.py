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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, model_validator
from starlette.routing import BaseRoute, Route

from shequn.clock import Clock
from shequn.config import Settings
from shequn.context import Ctx
from shequn.db import Database
from shequn.entrypoints.api.shapes import ERROR_STATUSES, ErrorOut
from shequn.errors import Forbidden, Unauthorized
from shequn.i18n import translate
from shequn.snapshot import Snapshot
from shequn.tenancy.rules import Permission, Principal, least_role_for
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
        raise Forbidden(
            "permission_denied",
            role=who.role.value,
            needed=translate(f"role.needs.{least_role_for(permission).value}"),
        )
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


def docstring_parts(doc: str | None) -> tuple[str, str]:
    """(summary, description) of a route's docstring: its first paragraph, on one line, and
    the rest."""
    head, _, rest = inspect.cleandoc(doc or "").partition("\n\n")
    return " ".join(head.split()), rest.strip()


def describe_operations(schema: dict[str, Any], routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """Give each operation of an OpenAPI document its route's docstring: the first paragraph
    as its summary, the rest as its description (a route's own `summary=` stays)."""
    paths = schema.get("paths", {})
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema or route.summary:
            continue
        summary, description = docstring_parts(route.endpoint.__doc__)
        if not summary:
            continue
        for method in route.methods or ():
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            operation["summary"] = summary
            if description:
                operation["description"] = description
            else:
                operation.pop("description", None)
    return schema


_REF_TEMPLATE = "#/components/schemas/{model}"
# What FastAPI documents for a request that fails validation, which this API never answers.
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
# What any request may be refused with before it reaches a route (`EdgeMiddleware`).
_EDGE_STATUSES = ("400", "413")


def error_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """Document the answer of every refused request (`ErrorOut`) for each status an operation
    may be refused with, in place of FastAPI's own validation error, which the API never
    answers. A response an operation declares itself stays."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error = ErrorOut.model_json_schema(mode="serialization", ref_template=_REF_TEMPLATE)
    for name, definition in error.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault(ErrorOut.__name__, error)
    ref = {"$ref": _REF_TEMPLATE.format(model=ErrorOut.__name__)}
    fastapi_refs = [{"$ref": _REF_TEMPLATE.format(model=name)} for name in _FASTAPI_VALIDATION]
    for path, operations in schema.get("paths", {}).items():
        statuses = (
            ERROR_STATUSES
            if path.startswith(API_PREFIX + "/")
            else {s: ERROR_STATUSES[s] for s in _EDGE_STATUSES}
        )
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in sorted({*statuses, *responses}):
                declared = responses.get(status)
                shown = (declared or {}).get("content", {}).get("application/json", {})
                fastapis = shown.get("schema") in fastapi_refs
                if fastapis or (declared is None and status in statuses):
                    responses[status] = {
                        "description": ERROR_STATUSES[status],
                        "content": {"application/json": {"schema": ref}},
                    }
    for name in _FASTAPI_VALIDATION:
        components.pop(name, None)
    return schema


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def integer_bounds(node: Any) -> Any:
    """An OpenAPI document with the bounds of integer fields as integers (FastAPI's model of
    the document reads every bound as a float: `maximum: 500.0`)."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in _BOUNDS:
                value = node.get(key)
                if isinstance(value, float) and value.is_integer():
                    node[key] = int(value)
        for value in node.values():
            integer_bounds(value)
    elif isinstance(node, list):
        for value in node:
            integer_bounds(value)
    return node


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
    router: APIRouter,
    path: str,
    *,
    body: type[BaseModel],
    response: type[BaseModel],
    status_code: int = 200,
    parameters: Mapping[str, Any] | None = None,
    responses: dict[int | str, dict[str, Any]] | None = None,
) -> Callable[[LeanEndpoint], LeanEndpoint]:
    """A POST route that reads its own body (`read_body`, `validate_body`) and returns encoded
    JSON (`json_response`); path parameters are in `request.path_params`. The document shows
    `response` as its answer (the answer is not validated against it: the schemathesis run
    checks that it matches), each path parameter as `parameters` declares it (a `Path(...)`),
    and any other answer in `responses`, as for a plain route."""

    def register(endpoint: LeanEndpoint) -> LeanEndpoint:
        full_path = router.prefix + path
        route = LeanRoute(full_path, endpoint, methods=["POST"], name=endpoint.__name__)
        route.documented = APIRoute(
            full_path,
            _signature_for_docs(endpoint, full_path, body, response, parameters or {}),
            methods=["POST"],
            status_code=status_code,
            tags=list(router.tags),
            name=endpoint.__name__,
            responses=responses,
        )
        router.routes.append(route)
        return endpoint

    return register


def _signature_for_docs(
    endpoint: LeanEndpoint,
    path: str,
    body: type[BaseModel],
    response: type[BaseModel],
    declared: Mapping[str, Any],
) -> Callable[..., Any]:
    """A callable that only describes the lean endpoint to FastAPI's OpenAPI generator: its
    path parameters, its body model, its answer's model. It is never called."""

    def described(**_: Any) -> Any:
        raise NotImplementedError("documentation only")

    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    parameters = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[str, declared[name]] if name in declared else str,
        )
        for name in names
    ]
    parameters.append(inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=body))
    described.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=response
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
            except ValueError as exc:
                # Not text at all (bytes that are no UTF-8): FastAPI answers 400 for it.
                raise HTTPException(400, "There was an error parsing the body") from exc
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
