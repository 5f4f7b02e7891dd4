from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, status
from pydantic import Field

from shequn.distribution.queries import member_commissions
from shequn.entrypoints.api.http import API_PREFIX, Admin, Body, Reader, Writer, blocking
from shequn.flows.registration import create_member as register_member
from shequn.members import service
from shequn.referrals import binding, tree

router = APIRouter(prefix=API_PREFIX, tags=["members"])

Source = Literal["share_link", "qr_scene", "staff", "import"]


class MemberCreate(Body):
    name: str
    phone: str | None = None
    external_id: str | None = None
    referrer_id: str | None = None
    source: Source = "share_link"
    scene: str | None = Field(default=None, max_length=64)
    tags: list[str] | None = None
    tier_id: str | None = None


class MemberUpdate(Body):
    name: str | None = None
    phone: str | None = None
    external_id: str | None = None
    tags: list[str] | None = None
    tier_id: str | None = None


class Rebind(Body):
    referrer_id: str | None
    reason: str


class TouchCreate(Body):
    sharer_id: str
    member_id: str | None = None
    phone: str | None = None
    external_id: str | None = None
    source: Source = "share_link"
    scene: str | None = Field(default=None, max_length=64)


@router.post("/members", status_code=status.HTTP_201_CREATED)
@blocking
def create_member(ctx: Writer, body: MemberCreate) -> dict[str, Any]:
    return register_member(ctx, **body.model_dump())


@router.get("/members")
@blocking
def list_members(
    ctx: Reader,
    tag: str | None = None,
    tier_id: str | None = None,
    referrer_id: str | None = None,
    phone: str | None = None,
    external_id: str | None = None,
    after: str | None = None,
    limit: int = Query(default=50),
) -> dict[str, Any]:
    return service.list_members(
        ctx,
        tag=tag,
        tier_id=tier_id,
        referrer_id=referrer_id,
        phone=phone,
        external_id=external_id,
        after=after,
        limit=limit,
    )


@router.get("/members/{member_id}")
@blocking
def get_member(ctx: Reader, member_id: str) -> dict[str, Any]:
    return service.get_member(ctx, member_id=member_id)


@router.patch("/members/{member_id}")
@blocking
def update_member(ctx: Writer, member_id: str, body: MemberUpdate) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True)
    set_tier = "tier_id" in fields
    return service.update_member(
        ctx,
        member_id=member_id,
        name=fields.get("name"),
        phone=fields.get("phone"),
        external_id=fields.get("external_id"),
        tags=fields.get("tags"),
        tier_id=fields.get("tier_id"),
        set_tier=set_tier,
    )


@router.get("/members/{member_id}/team")
@blocking
def team(ctx: Reader, member_id: str) -> dict[str, Any]:
    return tree.team_summary(ctx, member_id=member_id)


@router.get("/members/{member_id}/team/members")
@blocking
def team_members(
    ctx: Reader,
    member_id: str,
    max_depth: int | None = Query(default=None, ge=1, le=1000),
    after: str | None = None,
    limit: int = Query(default=100, ge=1, le=500),
) -> list[dict[str, Any]]:
    return tree.team_members(
        ctx, member_id=member_id, max_depth=max_depth, after=after, limit=limit
    )


@router.post("/members/{member_id}/rebind")
@blocking
def rebind(ctx: Admin, member_id: str, body: Rebind) -> dict[str, Any]:
    """Move a member (and its team) under another referrer: an owner's audited decision, as it
    changes who earns on the member's future orders."""
    binding.rebind_member(
        ctx, member_id=member_id, referrer_id=body.referrer_id, reason=body.reason
    )
    return service.get_member(ctx, member_id=member_id)


@router.get("/members/{member_id}/bindings")
@blocking
def bindings(ctx: Reader, member_id: str) -> list[dict[str, Any]]:
    return binding.binding_history(ctx, member_id=member_id)


@router.get("/members/{member_id}/commissions")
@blocking
def commissions(
    ctx: Reader,
    member_id: str,
    status: str | None = None,
    after: str | None = None,
    limit: int = Query(default=100),
) -> dict[str, Any]:
    return member_commissions(ctx, member_id=member_id, status=status, after=after, limit=limit)


@router.post("/referral-touches", status_code=status.HTTP_201_CREATED)
@blocking
def touch(ctx: Writer, body: TouchCreate) -> dict[str, Any]:
    return binding.record_touch(ctx, **body.model_dump())
