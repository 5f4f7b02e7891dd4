"""Certificates (a ritual of recognition): 授权书 for agents (their tier, territory and
validity) and 荣誉证书 for honours, as PDF, each with a verification code.

The code is `<tenant>-<serial>-<signature>`: the signature is an HMAC-SHA256, keyed with the
deployment's secret, over what the certificate states (`rules.certificate_signature`), so a
changed character, a code made up or a certificate altered in the database since does not
verify. Anyone can check a code without a key (`verify_code`): the answer says who, what and
until when, and refuses a revoked certificate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select, update

from shequn.community.common import random_code, view
from shequn.community.communities.rules import clean_text
from shequn.community.rituals.pdf import CertificateText, render_certificate
from shequn.community.rituals.rules import (
    SERIAL_LENGTH,
    CertificateKind,
    certificate_code,
    certificate_kind,
    certificate_signature,
    parse_certificate_code,
    signatures_match,
)
from shequn.community.tables import certificates
from shequn.context import Ctx
from shequn.db import Database
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import Event, record_events
from shequn.i18n import Locale, translate_in
from shequn.ids import new_id
from shequn.members.repo import require_member
from shequn.tenancy.repo import load_settings
from shequn.tenancy.tables import tenants
from shequn.tiers.tables import tiers


def _code(server_key: str, row: Any) -> str:
    signature = certificate_signature(
        server_key,
        tenant_id=row.tenant_id,
        serial=row.serial,
        certificate_id=row.id,
        member_id=row.member_id,
        kind=row.kind,
        valid_until=row.valid_until,
    )
    return certificate_code(row.tenant_id, row.serial, signature)


def _shown(server_key: str, row: Any) -> dict[str, Any]:
    shown = view(row)
    shown["code"] = _code(server_key, row)
    shown["pdf_url"] = f"/api/v1/certificates/{row.id}/pdf"
    shown["verify_url"] = f"/verify/{shown['code']}"
    return shown


def issue_certificate(
    ctx: Ctx,
    *,
    server_key: str,
    member_id: str,
    kind: str,
    title: str | None = None,
    tier: str | None = None,
    territory: str | None = None,
    citation: str | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> dict[str, Any]:
    """Issue a certificate to a member. An authorization names a territory and an end of
    validity (its tier is the member's unless given); an honour names what it honours."""
    chosen = certificate_kind(kind)
    now = ctx.clock.now()
    start = valid_from or now
    for name, at in (("valid_from", start), ("valid_until", valid_until)):
        if at is not None and at.tzinfo is None:
            raise InvalidInput("datetime_naive", field=name)
    if valid_until is not None and valid_until <= start:
        raise InvalidInput("certificate_validity_invalid")
    fields = {
        "title": clean_text(title, field="title", max_length=80),
        "tier": clean_text(tier, field="tier", max_length=80) or None,
        "territory": clean_text(territory, field="territory", max_length=80) or None,
        "citation": clean_text(citation, field="citation", max_length=200) or None,
    }
    if chosen is CertificateKind.AUTHORIZATION and (
        fields["territory"] is None or valid_until is None
    ):
        raise InvalidInput("authorization_needs_territory_and_validity")
    if chosen is CertificateKind.HONOUR and fields["citation"] is None and not fields["title"]:
        raise InvalidInput("honour_needs_citation")
    with ctx.db.transaction() as tx:
        member = require_member(tx, ctx.tenant_id, member_id)
        if member.anonymised_at is not None:
            raise Conflict("member_anonymised", id=member_id)
        locale = cast(Locale, load_settings(tx, ctx.tenant_id).locale)
        if chosen is CertificateKind.AUTHORIZATION and fields["tier"] is None and member.tier_id:
            fields["tier"] = tx.execute(
                select(tiers.c.name).where(
                    tiers.c.tenant_id == ctx.tenant_id, tiers.c.id == member.tier_id
                )
            ).scalar_one_or_none()
        if not fields["title"]:
            fields["title"] = translate_in(locale, f"community.certificate.heading.{chosen.value}")
        row: dict[str, Any] = {
            "tenant_id": ctx.tenant_id,
            "id": new_id("cert"),
            "serial": random_code(SERIAL_LENGTH),
            "member_id": member_id,
            "kind": chosen.value,
            "holder_name": member.name,
            **fields,
            "valid_from": start,
            "valid_until": valid_until,
            "issued_at": now,
            "revoked_at": None,
            "revoke_reason": None,
        }
        tx.execute(certificates.insert().values(row))
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[
                Event(
                    "CertificateIssued",
                    "certificate",
                    row["id"],
                    {"member_id": member_id, "kind": chosen.value},
                )
            ],
        )
        stored = _require(tx, ctx.tenant_id, row["id"])
    return _shown(server_key, stored)


def _require(tx: Connection, tenant_id: str, certificate_id: str) -> Any:
    row = tx.execute(
        select(certificates).where(
            certificates.c.tenant_id == tenant_id, certificates.c.id == certificate_id
        )
    ).first()
    if row is None:
        raise NotFound("certificate_not_found", id=certificate_id)
    return row


def get_certificate(ctx: Ctx, *, server_key: str, certificate_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        return _shown(server_key, _require(tx, ctx.tenant_id, certificate_id))


def revoke_certificate(
    ctx: Ctx, *, server_key: str, certificate_id: str, reason: str
) -> dict[str, Any]:
    """Revoke a certificate: its code no longer verifies. Revoking it again changes nothing."""
    note = clean_text(reason, field="reason", max_length=200, required=True)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        row = _require(tx, ctx.tenant_id, certificate_id)
        if row.revoked_at is None:
            tx.execute(
                update(certificates)
                .where(
                    certificates.c.tenant_id == ctx.tenant_id,
                    certificates.c.id == certificate_id,
                    certificates.c.revoked_at.is_(None),
                )
                .values(revoked_at=now, revoke_reason=note)
            )
            record_events(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                items=[
                    Event("CertificateRevoked", "certificate", certificate_id, {"reason": note})
                ],
            )
        return _shown(server_key, _require(tx, ctx.tenant_id, certificate_id))


def _when(at: datetime | None, time_zone: str) -> str:
    if at is None:
        return ""
    return at.astimezone(ZoneInfo(time_zone)).strftime("%Y-%m-%d")


def certificate_pdf(ctx: Ctx, *, server_key: str, certificate_id: str) -> bytes:
    """The certificate as PDF, in the tenant's language and time zone."""
    with ctx.db.read() as tx:
        row = _require(tx, ctx.tenant_id, certificate_id)
        settings = load_settings(tx, ctx.tenant_id)
        brand = tx.execute(
            select(tenants.c.name).where(tenants.c.tenant_id == ctx.tenant_id)
        ).scalar_one()
    locale = cast(Locale, settings.locale)
    zone = settings.time_zone

    def t(key: str, **params: Any) -> str:
        return translate_in(locale, f"community.certificate.{key}", **params)

    kind = CertificateKind(row.kind)
    lines = []
    if kind is CertificateKind.AUTHORIZATION:
        lines.append(t("authorizes", brand=brand))
        if row.tier:
            lines.append(t("tier", tier=row.tier))
        lines.append(t("territory", territory=row.territory))
    else:
        lines.append(t("honours", brand=brand))
        if row.citation:
            lines.append(row.citation)
    if row.title and row.title != t(f"heading.{kind.value}"):
        lines.insert(0, row.title)
    validity = (
        t("valid", start=_when(row.valid_from, zone), end=_when(row.valid_until, zone))
        if row.valid_until is not None
        else t("valid_from", start=_when(row.valid_from, zone))
    )
    return render_certificate(
        CertificateText(
            heading=t(f"heading.{kind.value}"),
            brand=brand,
            holder=row.holder_name,
            lines=lines,
            validity=validity,
            code_label=t("code"),
            code=_code(server_key, row),
            verify_hint=t("verify_hint", path=f"/verify/{_code(server_key, row)}"),
            issued=t("issued", date=_when(row.issued_at, zone)),
        )
    )


def verify_code(db: Database, *, server_key: str, code: str, now: datetime) -> dict[str, Any]:
    """Check a code without a key: who holds the certificate, what it says and until when.
    A code of the wrong shape, made up or altered is not found; a revoked one is refused."""
    parsed = parse_certificate_code(code)
    if parsed is None:
        raise NotFound("certificate_code_invalid")
    tenant_id, serial, signature = parsed
    with db.read() as tx:
        row = tx.execute(
            select(certificates).where(
                certificates.c.tenant_id == tenant_id, certificates.c.serial == serial
            )
        ).first()
        brand = tx.execute(
            select(tenants.c.name).where(tenants.c.tenant_id == tenant_id)
        ).scalar_one_or_none()
    if row is None or brand is None:
        raise NotFound("certificate_code_invalid")
    expected = _code(server_key, row).rsplit("-", 1)[1]
    if not signatures_match(expected, signature):
        raise NotFound("certificate_code_invalid")
    if row.revoked_at is not None:
        raise Conflict("certificate_revoked")
    expired = row.valid_until is not None and row.valid_until <= now
    pending = row.valid_from > now
    return {
        "valid": not expired and not pending,
        "status": "expired" if expired else ("not_yet_valid" if pending else "valid"),
        "brand": brand,
        "holder_name": row.holder_name,
        "kind": row.kind,
        "title": row.title,
        "tier": row.tier,
        "territory": row.territory,
        "citation": row.citation,
        "valid_from": row.valid_from,
        "valid_until": row.valid_until,
        "issued_at": row.issued_at,
    }
