"""The two requests of every paid order, answered without FastAPI's per-request machinery.

`POST /api/v1/orders` and `POST /api/v1/orders/{order_id}/pay` are what a shop sends for every
sale, and matching the route, solving its dependencies and validating the response took as
much CPU as the use cases themselves (docs/benchmarks.md). This ASGI layer, in front of the
routes, answers those two requests when they are ordinary: a key seen moments ago that may
write, a JSON body that the route's own model accepts. It validates with the same models, calls
the same use cases, renders domain errors with the same handler and the result with the same
serializer, so the answer is byte for byte the route's. Anything else it leaves untouched to
the FastAPI routes, which remain the definition of both endpoints (and their OpenAPI document):
it passes them the request as it came, body included.

The use cases run on the event loop here rather than on a worker thread: they are short, the
hop to a thread cost more CPU than the work, and every worker process has a socket of its own
(`shequn.entrypoints.server`), so the other connections are served by the other processes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shequn.context import Ctx
from shequn.errors import DomainError
from shequn.orders import service
from shequn.orders.api import OrderCreate, PaymentIn
from shequn.tenancy.rules import Permission, Principal
from shequn.tenancy.service import authenticate, cached_principal
from shequn.web import API_PREFIX, AppState

ORDERS_PATH = API_PREFIX + "/orders"
PAY_PATH = re.compile(re.escape(API_PREFIX) + r"/orders/([^/]+)/pay")
MAX_BODY = 1 << 20  # a larger body is left to the routes (and their limit)

_result = TypeAdapter(dict[str, Any])

ErrorRenderer = Callable[[Any, Exception], Awaitable[Response]]


class HotRoutes:
    def __init__(self, app: ASGIApp, state: AppState, render_error: ErrorRenderer) -> None:
        self.app = app
        self.state = state
        self.render_error = render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if path == ORDERS_PATH:
                await self._answer(scope, receive, send, None)
                return
            pay = PAY_PATH.fullmatch(path)
            if pay is not None:
                await self._answer(scope, receive, send, pay.group(1))
                return
        await self.app(scope, receive, send)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, order_id: str | None
    ) -> None:
        body, complete, pending = await _read_body(receive)
        replay = _replaying(body, complete, pending, receive)
        who = self._writer(scope)
        model: type[BaseModel] = OrderCreate if order_id is None else PaymentIn
        payload = _parse(model, body) if complete and who is not None else None
        if payload is None or who is None:
            await self.app(scope, replay, send)
            return
        ctx = Ctx(
            db=self.state.db, clock=self.state.clock, tenant_id=who.tenant_id, actor=who.actor
        )
        try:
            if order_id is None:
                assert isinstance(payload, OrderCreate)
                result, replayed = service.create_order(
                    ctx,
                    buyer_id=payload.buyer_id,
                    lines=[line.model_dump() for line in payload.lines],
                    idempotency_key=payload.idempotency_key,
                    attributed_sharer_id=payload.attributed_sharer_id,
                )
                status = 200 if replayed else 201
            else:
                assert isinstance(payload, PaymentIn)
                result, replayed = service.pay_order(
                    ctx,
                    order_id=order_id,
                    provider_txn_id=payload.provider_txn_id,
                    amount_fen=payload.amount_fen,
                )
                status = 200
        except DomainError as exc:
            response = await self.render_error(None, exc)
            await response(scope, replay, send)
            return
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        answer = Response(
            _result.dump_json(result),
            status_code=status,
            headers=headers,
            media_type="application/json",
        )
        await answer(scope, replay, send)

    def _writer(self, scope: Scope) -> Principal | None:
        """The principal of a key that may write, or None for the route to answer."""
        raw_key = _bearer_key(scope)
        if raw_key is None:
            return None
        who = cached_principal(raw_key)
        if who is None:
            try:
                who = authenticate(
                    db=self.state.db,
                    raw_key=raw_key,
                    cache_seconds=self.state.settings.api_key_cache_seconds,
                )
            except DomainError:
                return None
        return who if who.can(Permission.WRITE) else None


def _bearer_key(scope: Scope) -> str | None:
    """The key of a JSON request's `Authorization: Bearer` header."""
    content_type: bytes | None = None
    authorization: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value
        elif name == b"content-type":
            content_type = value
    if authorization is None or content_type is None:
        return None
    if content_type.split(b";", 1)[0].strip().lower() != b"application/json":
        return None
    scheme, _, raw = authorization.decode("latin-1").partition(" ")
    raw_key = raw.strip()
    if scheme.lower() != "bearer" or not raw_key:
        return None
    return raw_key


def _parse(model: type[BaseModel], body: bytes) -> BaseModel | None:
    """The body as the route's model reads it (decoded first, then validated strictly, as the
    route does), or None for anything the route should answer."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


async def _read_body(receive: Receive) -> tuple[bytes, bool, Message | None]:
    """The request body; whether all of it was read (not too large, not cut short); and the
    message that cut it short (a disconnect), to be given again."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False, message
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True, None
        if size > MAX_BODY:
            return b"".join(chunks), False, None


def _replaying(body: bytes, complete: bool, pending: Message | None, receive: Receive) -> Receive:
    """A `receive` that gives again what was read (the body so far, a disconnect), then
    whatever is left."""
    given = 0

    async def replay() -> Message:
        nonlocal given
        given += 1
        if given == 1:
            return {"type": "http.request", "body": body, "more_body": not complete}
        if given == 2 and pending is not None:
            return pending
        return await receive()

    return replay
