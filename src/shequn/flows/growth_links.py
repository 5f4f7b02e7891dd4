"""Registering a member who came through a share link or channel code: the code's member is
the referrer named, the code the scene of the referral touch (which records the channel and
its `state` for good), and the tenant's binding policy decides the binding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shequn.context import Ctx
from shequn.errors import InvalidInput
from shequn.flows.registration import create_member
from shequn.growth.links.service import share_link_member


def register_through_code(
    ctx: Ctx,
    *,
    code: str,
    name: str,
    phone: str | None = None,
    external_id: str | None = None,
    source: str = "share_link",
    tags: Sequence[str] | None = None,
) -> dict[str, Any]:
    if source not in ("share_link", "qr_scene"):
        raise InvalidInput("binding_source_invalid", source=source)
    with ctx.db.read() as tx:
        sharer = share_link_member(tx, ctx.tenant_id, code)
    return create_member(
        ctx,
        name=name,
        phone=phone,
        external_id=external_id,
        referrer_id=sharer,
        source=source,
        scene=code,
        tags=tags,
    )
