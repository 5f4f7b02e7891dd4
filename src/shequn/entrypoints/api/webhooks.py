"""Webhook endpoints (the owner's) and their deliveries (anyone may look; an operator replays
or skips one)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import Field

from shequn.entrypoints.api.http import API_PREFIX, Admin, Body, Reader, Writer, app_state, blocking
from shequn.entrypoints.api.shapes import Page, Shape, cursor, limits
from shequn.webhooks import rules, service

router = APIRouter(prefix=API_PREFIX, tags=["webhooks"])

ENDPOINT_ID = "The endpoint's id (`whe_…`)."
DELIVERY_ID = "The delivery's id (`whd_…`)."
URL_TEXT = (
    "Where deliveries are POSTed: an absolute `http://` or `https://` URL with a host, at most "
    "2048 characters, without spaces or a `#fragment` (else 422 `webhook_url_invalid`). A host "
    "at a private, loopback or link-local address, or `localhost`, is refused (422 "
    "`webhook_url_private`) unless the deployment sets SHEQUN_WEBHOOK_ALLOW_PRIVATE_HOSTS."
)
EVENT_TYPES_TEXT = (
    'The event types it receives (`OrderPaid`, `MemberRegistered`, …), or `["*"]` alone for '
    "every type; at least one (else 422 `webhook_event_types_empty`), each known (else 422 "
    "`webhook_event_type_unknown`)."
)
DESCRIPTION_TEXT = "A note for the people who manage it; trimmed, at most 200 characters."
EventTypes = list[str]
DeliveryStatus = Literal["pending", "delivered", "dead", "skipped"]


# --- requests ------------------------------------------------------------------------------


class EndpointCreate(Body):
    url: str = Field(max_length=rules.MAX_URL_LENGTH, description=URL_TEXT)
    event_types: EventTypes = Field(max_length=64, description=EVENT_TYPES_TEXT)
    description: str = Field(default="", max_length=200, description=DESCRIPTION_TEXT)


class EndpointPatch(Body):
    url: str | None = Field(
        default=None, max_length=rules.MAX_URL_LENGTH, description=f"A new URL. {URL_TEXT}"
    )
    event_types: EventTypes | None = Field(
        default=None,
        max_length=64,
        description=f"The new list, in place of the old one. {EVENT_TYPES_TEXT}",
    )
    description: str | None = Field(default=None, max_length=200, description=DESCRIPTION_TEXT)
    active: bool | None = Field(
        default=None,
        description="`false` pauses it: no new deliveries, and its pending ones wait; `true` "
        "resumes it.",
    )


class SecretRotation(Body):
    grace_hours: int | None = Field(
        default=None,
        description="How long the old secret still signs beside the new one, in hours: 0 to "
        "168 (else 422 `webhook_rotation_grace_invalid`); 24 when left out, 0 ends it now.",
        json_schema_extra=limits(minimum=0, maximum=168),
    )


# --- answers -------------------------------------------------------------------------------


class EndpointOut(Shape):
    """A webhook endpoint (never its secret)."""

    id: str = Field(description="`whe_…`.")
    url: str = Field(description="Where deliveries are POSTed.")
    description: str = Field(description="The note of the people who manage it.")
    event_types: list[str] = Field(
        description='The event types it receives, sorted; `["*"]`: every type.'
    )
    active: bool = Field(description="`false`: paused (no new deliveries, pending ones wait).")
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation, until when deliveries are signed with the previous "
        "secret too; null when only the current one signs."
    )
    created_at: datetime
    updated_at: datetime


class EndpointCreatedOut(EndpointOut):
    secret: str = Field(
        description="The signing secret (`whsec_…`), shown this once: keep it to verify "
        "`Shequn-Signature`."
    )


class SecretOut(Shape):
    id: str = Field(description="The endpoint's id.")
    secret: str = Field(description="The new signing secret (`whsec_…`), shown this once.")
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the previous secret signs too; null when it no longer does."
    )


class AttemptOut(Shape):
    """One attempt to deliver."""

    attempt: int = Field(description="1 for the first, counted over replays too.")
    attempted_at: datetime
    duration_ms: int = Field(description="From the request's start to the answer, in ms.")
    status_code: int | None = Field(
        description="The receiver's HTTP status; null when none came (no connection, a "
        "timeout, an address refused)."
    )
    error: str | None = Field(
        description="Why it failed (the start of the receiver's answer, or the connection's "
        "error), at most 300 characters; null when it succeeded."
    )
    succeeded: bool = Field(description="The receiver answered 2xx.")


class DeliveryOut(Shape):
    """One event to one endpoint, with its attempts."""

    id: str = Field(description="`whd_…`.")
    endpoint_id: str
    event_id: str = Field(description="The event delivered (as `GET /events` shows it).")
    event_type: str
    subject_type: str = Field(description="What the event is about (`order`, `member`, …).")
    subject_id: str
    status: DeliveryStatus = Field(
        description="`pending`: waiting for an attempt or a retry; `delivered`: answered 2xx; "
        "`dead`: every retry failed, it holds its subject's younger deliveries back until "
        "replayed or skipped; `skipped`: given up by an operator."
    )
    attempt_count: int = Field(description="Attempts made, over replays too.")
    next_attempt_at: datetime | None = Field(
        description="When a pending delivery is tried next; null otherwise."
    )
    created_at: datetime
    delivered_at: datetime | None
    last_status_code: int | None = Field(description="The last attempt's HTTP status.")
    last_error: str | None = Field(description="The last attempt's error.")
    attempts: list[AttemptOut] = Field(description="Every attempt, oldest first.")


class DeliveryPage(Page[DeliveryOut]):
    pass


# --- routes --------------------------------------------------------------------------------


def _allow_private(request: Request) -> bool:
    return app_state(request).settings.webhook_allow_private_hosts


@router.post(
    "/webhook-endpoints", status_code=status.HTTP_201_CREATED, response_model=EndpointCreatedOut
)
@blocking
def create_endpoint(ctx: Admin, request: Request, body: EndpointCreate) -> dict[str, Any]:
    """Register a webhook endpoint

    For a list of event types ("*" alone for every type); at most 16 per tenant (else 409
    `webhook_endpoints_limit`). The answer carries its signing secret (`whsec_…`) this once;
    keep it to verify `Shequn-Signature` (see docs/webhooks.md)."""
    return service.create_endpoint(
        ctx,
        server_key=app_state(request).settings.secret_key,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        allow_private=_allow_private(request),
    )


@router.get("/webhook-endpoints", response_model=list[EndpointOut])
@blocking
def list_endpoints(ctx: Admin) -> list[dict[str, Any]]:
    """List the webhook endpoints

    The tenant's endpoints, oldest first (never their secrets)."""
    return service.list_endpoints(ctx)


@router.patch("/webhook-endpoints/{endpoint_id}", response_model=EndpointOut)
@blocking
def patch_endpoint(
    ctx: Admin,
    request: Request,
    body: EndpointPatch,
    endpoint_id: str = Path(description=ENDPOINT_ID, max_length=64),
) -> dict[str, Any]:
    """Change or pause a webhook endpoint

    Its URL, event types, description, or whether it receives events (`active: false`
    pauses it: it gets no new deliveries and its pending ones wait). At least one field
    (else 422 `webhook_endpoint_patch_empty`)."""
    patch = body.model_dump(exclude_unset=True, exclude_none=True)
    return service.update_endpoint(
        ctx, endpoint_id=endpoint_id, allow_private=_allow_private(request), **patch
    )


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
@blocking
def delete_endpoint(
    ctx: Admin, endpoint_id: str = Path(description=ENDPOINT_ID, max_length=64)
) -> Response:
    """Delete a webhook endpoint

    With its deliveries and their attempts: nothing more is sent to it. To stop it for a
    while instead, pause it (`PATCH` with `active: false`)."""
    service.delete_endpoint(ctx, endpoint_id=endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/webhook-endpoints/{endpoint_id}/rotate-secret", response_model=SecretOut)
@blocking
def rotate_secret(
    ctx: Admin,
    request: Request,
    endpoint_id: str = Path(description=ENDPOINT_ID, max_length=64),
    body: SecretRotation | None = None,
) -> dict[str, Any]:
    """Rotate an endpoint's signing secret

    A new secret, shown this once. For `grace_hours` (24 unless given, 0 to 168) deliveries
    carry a signature with the old secret too, so that the receiver can switch over."""
    return service.rotate_secret(
        ctx,
        server_key=app_state(request).settings.secret_key,
        endpoint_id=endpoint_id,
        grace_hours=None if body is None else body.grace_hours,
    )


@router.get("/webhook-deliveries", response_model=DeliveryPage)
@blocking
def list_deliveries(
    ctx: Reader,
    endpoint_id: str | None = Query(
        default=None,
        max_length=64,
        description="Only this endpoint's deliveries (404 `webhook_endpoint_not_found` when "
        "the tenant has no such endpoint).",
    ),
    delivery_status: DeliveryStatus | None = Query(
        default=None, alias="status", description="Only the deliveries in this status."
    ),
    after: str | None = Query(
        default=None,
        description="The `next_after` of the page before (a delivery id, else 422 "
        "`cursor_invalid`).",
        json_schema_extra=cursor("whd"),
    ),
    limit: int = Query(
        default=50,
        ge=1,
        le=service.MAX_PAGE,
        description="Deliveries per page, 1 to 100.",
    ),
) -> dict[str, Any]:
    """List webhook deliveries

    With their attempts, oldest first; pass `next_after` back as `after`."""
    return service.delivery_page(
        ctx, endpoint_id=endpoint_id, status=delivery_status, after=after, limit=limit
    )


@router.post("/webhook-deliveries/{delivery_id}/replay", response_model=DeliveryOut)
@blocking
def replay_delivery(
    ctx: Writer, delivery_id: str = Path(description=DELIVERY_ID, max_length=64)
) -> dict[str, Any]:
    """Replay a webhook delivery

    Send a delivered, dead or skipped delivery again, with a fresh set of retries (a pending
    one goes out anyway: 409 `webhook_delivery_not_replayable`)."""
    return service.replay_delivery(ctx, delivery_id=delivery_id)


@router.post("/webhook-deliveries/{delivery_id}/skip", response_model=DeliveryOut)
@blocking
def skip_delivery(
    ctx: Writer, delivery_id: str = Path(description=DELIVERY_ID, max_length=64)
) -> dict[str, Any]:
    """Skip a webhook delivery

    Give up on a pending or dead delivery, so that the subject's younger ones go out (any
    other: 409 `webhook_delivery_not_skippable`)."""
    return service.skip_delivery(ctx, delivery_id=delivery_id)
