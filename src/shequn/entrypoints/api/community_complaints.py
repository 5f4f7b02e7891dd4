"""Complaints and crisis: tickets with status, owner and SLA timers; a crisis alert when
complaints cluster on one product, surface in a large group or use sensitive words."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from pydantic import Field

from shequn.community.complaints import service as complaints
from shequn.entrypoints.api.community_health import AlertOut
from shequn.entrypoints.api.http import API_PREFIX, Body, Reader, Writer, blocking
from shequn.entrypoints.api.shapes import Shape

router = APIRouter(prefix=API_PREFIX, tags=["complaints"])

ComplaintId = Annotated[str, Path(description="The complaint (`cmp_…`); unknown: 404.")]


class ComplaintIn(Body):
    member_id: str = Field(max_length=40, description="Who complains (`mem_…`).")
    body: str = Field(max_length=2000, description="What the complaint says.")
    order_id: str | None = Field(default=None, max_length=40, description="The order, if any.")
    sku: str | None = Field(default=None, max_length=64, description="The product, if any.")
    group_id: str | None = Field(
        default=None, max_length=40, description="The group it surfaced in, if any."
    )
    owner: str | None = Field(default=None, max_length=80, description="Who handles it.")


class ResolveIn(Body):
    resolution: str = Field(max_length=1000, description="How it was resolved (1 to 1,000).")


class ComplaintOut(Shape):
    id: str
    member_id: str
    order_id: str | None
    sku: str | None
    group_id: str | None
    body: str
    status: str
    owner: str | None
    respond_by: datetime
    resolve_by: datetime
    responded_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None
    created_at: datetime
    updated_at: datetime
    respond_overdue: bool
    resolve_overdue: bool


class ComplaintCreated(ComplaintOut):
    crisis_alert: AlertOut | None


@router.post("/complaints", status_code=status.HTTP_201_CREATED, response_model=ComplaintCreated)
@blocking
def create_complaint(ctx: Writer, body: ComplaintIn) -> dict[str, Any]:
    """Open a complaint ticket

    With its SLA timers; a crisis alert (in the answer) when it clusters on its product,
    surfaces in a large group or uses sensitive words."""
    return complaints.create_complaint(ctx, **body.model_dump())


@router.get("/complaints/{complaint_id}", response_model=ComplaintOut)
@blocking
def get_complaint(ctx: Reader, complaint_id: ComplaintId) -> dict[str, Any]:
    """Show a complaint ticket

    Its status, owner and whether its timers are overdue."""
    return complaints.get_complaint(ctx, complaint_id=complaint_id)


@router.post("/complaints/{complaint_id}/resolve", response_model=ComplaintOut)
@blocking
def resolve_complaint(ctx: Writer, complaint_id: ComplaintId, body: ResolveIn) -> dict[str, Any]:
    """Resolve a complaint ticket

    The resolution goes into the community's chronicle."""
    return complaints.resolve_complaint(ctx, complaint_id=complaint_id, resolution=body.resolution)


class ScannedMessage(Body):
    group_id: str = Field(max_length=40, description="The group it was posted in (`grp_…`).")
    member_id: str | None = Field(default=None, max_length=40, description="Who wrote it.")
    text: str = Field(max_length=4000, description="The message's text (read, not kept).")


class ScanIn(Body):
    items: list[ScannedMessage] = Field(
        min_length=1, max_length=500, description="Messages from a channel, 1 to 500."
    )


class ScanOut(Shape):
    scanned: int
    matched: int
    alerts: list[AlertOut]


@router.post("/message-scans", response_model=ScanOut)
@blocking
def scan_messages(ctx: Writer, body: ScanIn) -> dict[str, Any]:
    """Scan group messages for sensitive words

    A group with a match gets a crisis alert with the words, the writers and the members
    the group reaches; the texts are not kept."""
    return complaints.scan_messages(ctx, items=[i.model_dump() for i in body.items])
