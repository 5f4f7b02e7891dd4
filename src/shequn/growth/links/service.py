"""Share links: create one per member, target and channel state; follow one (the public
redirect, which logs the visitor's first click); draw its QR code and poster; name who came
through it (a referral touch whose scene is the code, which feeds binding)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from shequn.catalog.tables import products
from shequn.clock import Clock
from shequn.context import Ctx
from shequn.db import Database
from shequn.errors import InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.growth.links import images
from shequn.growth.links.rules import (
    clean_state,
    clean_target,
    is_code,
    is_visitor,
    new_code,
    new_visitor,
)
from shequn.growth.links.tables import share_clicks, share_links
from shequn.growth.settings.rules import GrowthSettings, share_url
from shequn.growth.settings.service import load_growth_settings
from shequn.i18n import translate
from shequn.members.repo import require_member
from shequn.referrals.binding import record_touch, save_touch, visitor_key, visitor_keys
from shequn.referrals.tables import referral_touches
from shequn.tenancy.tables import tenants

CODE_ATTEMPTS = 5


def short_url(settings: GrowthSettings, base_url: str, code: str) -> str:
    return f"{settings.short_link_base or base_url.rstrip('/')}/s/{code}"


def _view(
    tx: Connection, tenant_id: str, row: Row[Any], base_url: str, api_base: str
) -> dict[str, Any]:
    settings = load_growth_settings(tx, tenant_id)
    clicks = tx.execute(
        select(func.count()).where(
            share_clicks.c.tenant_id == tenant_id, share_clicks.c.code == row.code
        )
    ).scalar_one()
    api = f"{api_base.rstrip('/')}/share-links/{row.code}"
    return {
        "code": row.code,
        "member_id": row.member_id,
        "target_type": row.target_type,
        "target_id": row.target_id or None,
        "state": row.state or None,
        "url": short_url(settings, base_url, row.code),
        "target_url": share_url(
            settings, target_type=row.target_type, target_id=row.target_id, code=row.code
        )
        or None,
        "qr_png_url": f"{api}/qr.png",
        "qr_svg_url": f"{api}/qr.svg",
        "poster_url": f"{api}/poster.png",
        "unique_visitors": int(clicks),
        "created_at": row.created_at,
    }


def _link(tx: Connection, tenant_id: str, code: str) -> Row[Any]:
    row = None
    if is_code(code):
        row = tx.execute(
            select(share_links).where(
                share_links.c.tenant_id == tenant_id, share_links.c.code == code
            )
        ).first()
    if row is None:
        raise NotFound("share_link_not_found", share_code=code[:16])
    return row


def share_link_member(tx: Connection, tenant_id: str, code: str) -> str:
    """The member a share code belongs to."""
    member: str = _link(tx, tenant_id, code).member_id
    return member


def _existing(
    tx: Connection, tenant_id: str, member_id: str, target: tuple[str, str], state: str
) -> Row[Any] | None:
    return tx.execute(
        select(share_links).where(
            share_links.c.tenant_id == tenant_id,
            share_links.c.member_id == member_id,
            share_links.c.target_type == target[0],
            share_links.c.target_id == target[1],
            share_links.c.state == state,
        )
    ).first()


def create_share_link(
    ctx: Ctx,
    *,
    member_id: str,
    target_type: str,
    target_id: str | None = None,
    state: str | None = None,
    base_url: str,
    api_base: str,
) -> tuple[dict[str, Any], bool]:
    """The member's code for this target and state: made the first time, the same one after
    (returns (link, created)). Any member may share; no agent tier is needed."""
    target = clean_target(target_type, target_id)
    clean = clean_state(state)
    for _ in range(CODE_ATTEMPTS):
        try:
            with ctx.db.transaction() as tx:
                require_member(tx, ctx.tenant_id, member_id)
                found = _existing(tx, ctx.tenant_id, member_id, target, clean)
                if found is not None:
                    return _view(tx, ctx.tenant_id, found, base_url, api_base), False
                code = new_code()
                now = ctx.clock.now()
                tx.execute(
                    share_links.insert().values(
                        tenant_id=ctx.tenant_id,
                        code=code,
                        member_id=member_id,
                        target_type=target[0],
                        target_id=target[1],
                        state=clean,
                        created_at=now,
                    )
                )
                record_event(
                    tx,
                    tenant_id=ctx.tenant_id,
                    actor=ctx.actor,
                    at=now,
                    type="ShareLinkCreated",
                    subject_type="member",
                    subject_id=member_id,
                    payload={"code": code, "target_type": target[0], "state": clean or None},
                )
                return _view(
                    tx, ctx.tenant_id, _link(tx, ctx.tenant_id, code), base_url, api_base
                ), True
        except IntegrityError:
            # The same link made at the same moment, or a code another tenant holds: the
            # next attempt finds the first or draws another code.
            continue
    raise InvalidInput("share_link_code_exhausted")


def get_share_link(ctx: Ctx, *, code: str, base_url: str, api_base: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        return _view(tx, ctx.tenant_id, _link(tx, ctx.tenant_id, code), base_url, api_base)


def list_share_links(
    ctx: Ctx, *, member_id: str, base_url: str, api_base: str
) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        require_member(tx, ctx.tenant_id, member_id)
        rows = tx.execute(
            select(share_links)
            .where(share_links.c.tenant_id == ctx.tenant_id, share_links.c.member_id == member_id)
            .order_by(share_links.c.created_at, share_links.c.code)
        ).all()
        return [_view(tx, ctx.tenant_id, r, base_url, api_base) for r in rows]


@dataclass(frozen=True)
class Redirect:
    location: str
    visitor: str  # the visitor's cookie (new if the request had none)


def follow_share_link(*, db: Database, clock: Clock, code: str, visitor: str | None) -> Redirect:
    """The public redirect of `GET /s/{code}`: where the tenant said the target lives, and the
    visitor's first click on this code logged (later clicks of the same visitor are not)."""
    if not is_code(code):
        raise NotFound("share_link_not_found", share_code=code[:16])
    seen = visitor if is_visitor(visitor) else None
    who = seen or new_visitor()
    now = clock.now()
    with db.transaction() as tx:
        row = tx.execute(select(share_links).where(share_links.c.code == code)).first()
        if row is None:
            raise NotFound("share_link_not_found", share_code=code)
        settings = load_growth_settings(tx, row.tenant_id)
        location = share_url(
            settings,
            target_type=row.target_type,
            target_id=row.target_id,
            code=code,
            visitor=who,
        )
        if not location:
            raise NotFound("share_target_unconfigured", target_type=row.target_type)
        maker = postgresql_insert if tx.dialect.name == "postgresql" else sqlite_insert
        # Whether this visitor's click is the first on the code (a row returned), not the
        # row count, which the asynchronous driver does not report for this statement.
        first_click = (
            tx.execute(
                maker(share_clicks)
                .values(tenant_id=row.tenant_id, code=code, visitor=who, clicked_at=now)
                .on_conflict_do_nothing()
                .returning(share_clicks.c.visitor)
            ).first()
            is not None
        )
        if first_click:
            # The click is a referral touch of the browser: when it registers naming its
            # visitor id, the binding policy counts it within the attribution window.
            save_touch(
                tx,
                tenant_id=row.tenant_id,
                sharer_id=row.member_id,
                visitor_key=visitor_key(who),
                source="share_link",
                scene=code,
                at=now,
            )
            record_event(
                tx,
                tenant_id=row.tenant_id,
                actor="public",
                at=now,
                type="ShareLinkClicked",
                subject_type="member",
                subject_id=row.member_id,
                payload={"code": code},
            )
    return Redirect(location, who)


def record_share_touch(
    ctx: Ctx,
    *,
    code: str,
    member_id: str | None = None,
    phone: str | None = None,
    external_id: str | None = None,
    source: str = "share_link",
) -> dict[str, Any]:
    """Name who came through the code (a member, or a phone or external id not registered
    yet): a referral touch of the code's member with the code as its scene, which the
    tenant's binding policy counts within its attribution window."""
    if source not in ("share_link", "qr_scene"):
        raise InvalidInput("binding_source_invalid", source=source)
    with ctx.db.read() as tx:
        link = _link(tx, ctx.tenant_id, code)
    touched = record_touch(
        ctx,
        sharer_id=link.member_id,
        member_id=member_id,
        phone=phone,
        external_id=external_id,
        source=source,
        scene=link.code,
    )
    return {**touched, "code": link.code, "state": link.state or None}


def member_channel(ctx: Ctx, *, member_id: str) -> dict[str, Any]:
    """The channel that brought the member: the first of its referral touches whose scene is
    one of the tenant's share codes, with that code's sharer, target and state."""
    with ctx.db.read() as tx:
        member = require_member(tx, ctx.tenant_id, member_id)
        keys = visitor_keys(member_id, member.phone, member.external_id)
        row = tx.execute(
            select(
                share_links.c.code,
                share_links.c.member_id,
                share_links.c.target_type,
                share_links.c.target_id,
                share_links.c.state,
                referral_touches.c.source,
                referral_touches.c.touched_at,
            )
            .select_from(
                referral_touches.join(
                    share_links,
                    (share_links.c.tenant_id == referral_touches.c.tenant_id)
                    & (share_links.c.code == referral_touches.c.scene),
                )
            )
            .where(
                referral_touches.c.tenant_id == ctx.tenant_id,
                referral_touches.c.visitor_key.in_(keys),
            )
            .order_by(referral_touches.c.touched_at, referral_touches.c.id)
            .limit(1)
        ).first()
    if row is None:
        return {"member_id": member_id, "channel": None}
    return {
        "member_id": member_id,
        "channel": {
            "code": row.code,
            "sharer_id": row.member_id,
            "target_type": row.target_type,
            "target_id": row.target_id or None,
            "state": row.state or None,
            "source": row.source,
            "touched_at": row.touched_at,
        },
    }


def channel_counts(ctx: Ctx) -> list[dict[str, Any]]:
    """How many members each channel state brought (members counted once, by their first
    touch through a code)."""
    with ctx.db.read() as tx:
        first = (
            select(
                referral_touches.c.visitor_key,
                func.min(referral_touches.c.touched_at).label("first_at"),
            )
            .join(
                share_links,
                (share_links.c.tenant_id == referral_touches.c.tenant_id)
                & (share_links.c.code == referral_touches.c.scene),
            )
            .where(referral_touches.c.tenant_id == ctx.tenant_id)
            .group_by(referral_touches.c.visitor_key)
            .subquery()
        )
        rows = tx.execute(
            select(share_links.c.state, func.count(func.distinct(first.c.visitor_key)))
            .select_from(
                first.join(
                    referral_touches,
                    (referral_touches.c.tenant_id == ctx.tenant_id)
                    & (referral_touches.c.visitor_key == first.c.visitor_key)
                    & (referral_touches.c.touched_at == first.c.first_at),
                ).join(
                    share_links,
                    (share_links.c.tenant_id == referral_touches.c.tenant_id)
                    & (share_links.c.code == referral_touches.c.scene),
                )
            )
            .group_by(share_links.c.state)
            .order_by(share_links.c.state)
        ).all()
    return [{"state": r[0] or None, "members": int(r[1])} for r in rows]


def _link_for_image(ctx: Ctx, code: str, base_url: str) -> tuple[Row[Any], str]:
    with ctx.db.read() as tx:
        link = _link(tx, ctx.tenant_id, code)
        settings = load_growth_settings(tx, ctx.tenant_id)
    return link, short_url(settings, base_url, link.code)


def share_link_url(ctx: Ctx, *, code: str, base_url: str) -> str:
    """The link's short URL, which its QR code encodes."""
    return _link_for_image(ctx, code, base_url)[1]


def draw_qr(url: str, kind: str) -> bytes:
    """A QR code as PNG or SVG (CPU work only: callers on an event loop run it on a thread)."""
    return images.qr_svg(url) if kind == "svg" else images.qr_png(url)


def share_qr(ctx: Ctx, *, code: str, kind: str, base_url: str) -> bytes:
    """The link's QR code, as PNG or SVG."""
    return draw_qr(share_link_url(ctx, code=code, base_url=base_url), kind)


@dataclass(frozen=True)
class PosterParts:
    """What a poster shows, read from the database (drawing it needs no database)."""

    url: str
    title: str
    sharer_line: str
    call_to_action: str
    brand: str


def poster_parts(ctx: Ctx, *, code: str, base_url: str) -> PosterParts:
    """The link's poster's texts: the target's name (a product's own), the sharer's name."""
    with ctx.db.read() as tx:
        link = _link(tx, ctx.tenant_id, code)
        settings = load_growth_settings(tx, ctx.tenant_id)
        sharer = require_member(tx, ctx.tenant_id, link.member_id)
        brand = tx.execute(
            select(tenants.c.name).where(tenants.c.tenant_id == ctx.tenant_id)
        ).scalar_one()
        title = link.target_id or translate(f"poster.target.{link.target_type}")
        if link.target_type == "product":
            name = tx.execute(
                select(products.c.name).where(
                    products.c.tenant_id == ctx.tenant_id, products.c.sku == link.target_id
                )
            ).scalar_one_or_none()
            title = name or title
    return PosterParts(
        url=short_url(settings, base_url, link.code),
        title=title,
        sharer_line=translate("poster.shared_by", name=sharer.name),
        call_to_action=translate("poster.call_to_action"),
        brand=brand,
    )


def draw_poster(parts: PosterParts) -> bytes:
    """The poster as PNG (CPU work only: callers on an event loop run it on a thread)."""
    return images.poster_png(
        url=parts.url,
        title=parts.title,
        sharer_line=parts.sharer_line,
        call_to_action=parts.call_to_action,
        brand=parts.brand,
    )


def share_poster(ctx: Ctx, *, code: str, base_url: str) -> bytes:
    """The link's poster: the target's name (a product's own), the sharer's name, the QR."""
    return draw_poster(poster_parts(ctx, code=code, base_url=base_url))
