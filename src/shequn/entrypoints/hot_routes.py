"""The two requests of every paid order, answered without FastAPI's per-request machinery.

`POST /api/v1/orders` and `POST /api/v1/orders/{order_id}/pay` are what a shop sends for every
sale, and matching the route, solving its dependencies and validating the response took as
much CPU as the use cases themselves (docs/benchmarks.md). `FastAnswers` answers those two
requests when they are ordinary: a key that may write, a JSON body that the route's own model
accepts. It validates with the same models, calls the same use cases, renders domain errors
with the same handler and the result with the same serializer and headers, so the answer is
byte for byte the route's. Anything else it declines, and the FastAPI routes answer, which
remain the definition of both endpoints (and their OpenAPI document).

Two callers use it: the HTTP protocol of `shequn serve` (`shequn.entrypoints.http_protocol`),
before the application is called at all, and `HotRoutes`, an ASGI layer in front of the routes
for the requests that reach the application anyway (under another ASGI server, or in tests);
a declined request goes on to the routes as it came, body included.

The use cases run on the event loop rather than on a worker thread: they are short, the hop to
a thread cost more CPU than the work, and every worker process has a socket of its own
(`shequn.entrypoints.server`), so the other connections are served by the other processes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shequn.context import Ctx
from shequn.errors import DomainError
from shequn.i18n import Locale, negotiate, use_locale
from shequn.orders import service
from shequn.orders.api import OrderCreate, PaymentIn
from shequn.tenancy.rules import Permission, Principal
from shequn.tenancy.service import authenticate, cached_principal
from shequn.web import API_PREFIX, AppState

ORDERS_PATH = API_PREFIX + "/orders"
PAY_PATH = re.compile(re.escape(API_PREFIX) + r"/orders/([^/]+)/pay")
MAX_BODY = 1 << 20  # a larger body is left to the routes (and their limit)

_result = TypeAdapter(dict[str, Any])
_JSON = (b"content-type", b"application/json")
_REPLAYED = (b"idempotent-replayed", b"true")

Headers = Sequence[tuple[bytes, bytes]]
ErrorRenderer = Callable[[DomainError], Response]
InternalErrorRenderer = Callable[[], Response]


@dataclass(frozen=True, slots=True)
class Target:
    """Which of the two requests: creating an order (`order_id` None) or paying one."""

    order_id: str | None


CREATE = Target(None)


def target_of(path: str) -> Target | None:
    """The request a POST to `path` (decoded) makes, if it is one of the two."""
    if path == ORDERS_PATH:
        return CREATE
    pay = PAY_PATH.fullmatch(path)
    return Target(pay.group(1)) if pay is not None else None


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole response: status, headers as sent (names in lower case), body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class FastAnswers:
    """The use case behind either request, called directly, and its answer rendered as the
    route renders it; None for a request the routes should answer (no key that may write, a
    body the route's model does not accept). Synchronous: it is called by the ASGI layer below
    and by the HTTP protocol itself (`shequn.entrypoints.http_protocol`)."""

    def __init__(
        self,
        state: AppState,
        *,
        render_error: ErrorRenderer,
        render_internal_error: InternalErrorRenderer,
        default: Locale,
    ) -> None:
        self.state = state
        self.render_error = render_error
        self.render_internal_error = render_internal_error
        self.default = default

    def internal_error(self, headers: Headers) -> Answer:
        """The answer to a request whose use case failed unforeseen (for a caller that has no
        error handler of its own around it)."""
        _, language = _request_facts(headers)
        with use_locale(negotiate(language, self.default)):
            return _answer_of(self.render_internal_error())

    def answer(self, target: Target, headers: Headers, body: bytes) -> Answer | None:
        raw_key, language = _request_facts(headers)
        if raw_key is None:
            return None
        who = self._writer(raw_key)
        if who is None:
            return None
        model: type[BaseModel] = OrderCreate if target.order_id is None else PaymentIn
        payload = _parse(model, body)
        if payload is None:
            return None
        ctx = Ctx(
            db=self.state.db, clock=self.state.clock, tenant_id=who.tenant_id, actor=who.actor
        )
        with use_locale(negotiate(language, self.default)):
            try:
                if target.order_id is None:
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
                        order_id=target.order_id,
                        provider_txn_id=payload.provider_txn_id,
                        amount_fen=payload.amount_fen,
                    )
                    status = 200
            except DomainError as exc:
                return _answer_of(self.render_error(exc))
        content = _result.dump_json(result)
        length = (b"content-length", str(len(content)).encode("latin-1"))
        return Answer(status, [length, _JSON, _REPLAYED] if replayed else [length, _JSON], content)

    def _writer(self, raw_key: str) -> Principal | None:
        """The principal of a key that may write, or None for the route to answer."""
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


def _answer_of(response: Response) -> Answer:
    return Answer(response.status_code, response.raw_headers, bytes(response.body))


class HotRoutes:
    """The fast answers as an ASGI layer in front of the routes (for any ASGI server; under
    `shequn serve` the HTTP protocol answers most of these requests before they get here)."""

    def __init__(self, app: ASGIApp, answers: FastAnswers) -> None:
        self.app = app
        self.answers = answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            target = target_of(scope["path"])
            if target is not None:
                await self._answer(scope, receive, send, target)
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, target: Target) -> None:
        body, complete, pending = await _read_body(receive)
        answer = self.answers.answer(target, scope["headers"], body) if complete else None
        if answer is None:
            await self.app(scope, _replaying(body, complete, pending, receive), send)
            return
        await send(
            {"type": "http.response.start", "status": answer.status, "headers": answer.headers}
        )
        await send({"type": "http.response.body", "body": answer.body})


def _request_facts(headers: Headers) -> tuple[str | None, str | None]:
    """The key of a JSON request's `Authorization: Bearer` header (None for anything else),
    and its Accept-Language."""
    content_type: bytes | None = None
    authorization: bytes | None = None
    language: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            authorization = value
        elif name == b"content-type":
            content_type = value
        elif name == b"accept-language" and language is None:
            language = value
    spoken = language.decode("latin-1") if language is not None else None
    if authorization is None or content_type is None:
        return None, spoken
    if content_type.split(b";", 1)[0].strip().lower() != b"application/json":
        return None, spoken
    scheme, _, raw = authorization.decode("latin-1").partition(" ")
    raw_key = raw.strip()
    if scheme.lower() != "bearer" or not raw_key:
        return None, spoken
    return raw_key, spoken


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
