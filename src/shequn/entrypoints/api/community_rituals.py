"""Rituals: badges and titles, certificates with their PDF, and the public check of a
certificate's code (an endpoint and a page, no key)."""

from __future__ import annotations

import html
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import Field

from shequn.community.rituals import badges, certificates
from shequn.entrypoints.api.community_models import (
    AwardOut,
    BadgeOut,
    CertificateOut,
    GrantOut,
    MemberBadgesOut,
    Timestamp,
    VerificationOut,
)
from shequn.entrypoints.api.http import (
    API_PREFIX,
    Admin,
    Body,
    Reader,
    Writer,
    app_state,
    blocking,
    error_body,
    run_use_case,
)
from shequn.entrypoints.rendering import error_message
from shequn.errors import DomainError
from shequn.i18n import get_locale, translate

router = APIRouter(prefix=API_PREFIX, tags=["rituals"])
public = APIRouter(tags=["rituals"])

# The public check answers without a key: OpenAPI says so for its operation.
NO_KEY: dict[str, Any] = {"security": []}


BadgeId = Annotated[str, Path(description="The badge's id (`bdg_…`).")]
CertificateId = Annotated[str, Path(description="The certificate's id (`cert_…`).")]
MemberId = Annotated[str, Path(description="The member's id (`mem_…`).")]
VerificationCode = Annotated[
    str,
    Path(
        description="The verification code printed on the certificate; a code altered by so "
        "much as a character does not verify."
    ),
]
FACTS_TEXT = (
    "The fact tested, a whole number per member: `paid_order_count`, "
    "`lifetime_order_count`, `paid_total_fen`, `direct_count`, `team_count`, `communities`, "
    "or a count of activities: `messages`, `likes`, `visits`, `check_ins`, `adds`, "
    "`replies`, `feedback` (else 422 `badge_fact_unknown`)."
)


class Condition(Body):
    fact: str = Field(max_length=40, description=FACTS_TEXT)
    op: Literal[">=", ">", "=", "<=", "<"] = Field(description="How the fact is compared.")
    value: int = Field(ge=0, le=10**13, description="The figure it is compared with.")


class Criteria(Body):
    all: list[Condition] = Field(
        min_length=1,
        max_length=10,
        description="1 to 10 conditions a member meets all of to earn the badge.",
    )


class BadgeCreate(Body):
    name: str = Field(
        max_length=80, description="The badge's name, unique in the tenant (else 409)."
    )
    description: str = Field(
        default="", max_length=500, description="What it stands for (at most 500)."
    )
    kind: Literal["badge", "title"] = Field(
        default="badge",
        description="`badge`, or `title`: a title (称号) the member carries, the latest "
        "awarded one shown.",
    )
    criteria: Criteria | None = Field(
        default=None,
        description="Awarded automatically to every member who meets them (as facts move "
        "and when badges are granted); absent: awarded by hand only.",
    )


class AwardIn(Body):
    member_id: str = Field(
        max_length=40, description="The member (`mem_…`); unknown: 404 `member_not_found`."
    )
    reason: str | None = Field(
        default=None, max_length=200, description="Why, shown with the badge (at most 200)."
    )


class CertificateIn(Body):
    member_id: str = Field(
        max_length=40,
        description="The holder (`mem_…`): its name is printed on the certificate; unknown: "
        "404 `member_not_found`.",
    )
    kind: Literal["authorization", "honour"] = Field(
        description="`authorization`: a 授权书 for an agent (tier, territory, validity); "
        "`honour`: a 荣誉证书."
    )
    title: str | None = Field(
        default=None,
        max_length=80,
        description="What it certifies, printed under the kind's heading (授权书, 荣誉证书).",
    )
    tier: str | None = Field(
        default=None, max_length=80, description="The agent's tier (an authorization's)."
    )
    territory: str | None = Field(
        default=None,
        max_length=80,
        description="Where the agent is authorized: an authorization needs it and "
        "`valid_until` (else 422 `authorization_needs_territory_and_validity`).",
    )
    citation: str | None = Field(
        default=None,
        max_length=200,
        description="What it honours: an honour needs it or a `title` (else 422 "
        "`honour_needs_citation`).",
    )
    valid_from: Timestamp | None = Field(
        default=None, description="From when it is valid, with its offset; absent: now."
    )
    valid_until: Timestamp | None = Field(
        default=None,
        description="Until when it is valid, after `valid_from` (else 422); absent: without end.",
    )


class RevokeIn(Body):
    reason: str = Field(
        max_length=200, description="Why, for the audit trail (1 to 200 characters)."
    )


@router.post("/badges", status_code=status.HTTP_201_CREATED, response_model=BadgeOut)
@blocking
def create_badge(ctx: Admin, body: BadgeCreate) -> dict[str, Any]:
    """Create a badge

    A badge or a title (称号), awarded automatically to the members who meet its criteria over
    facts (orders, spend, referrals, communities, activity counts), as Discourse's badges are, or
    by hand when it has none; `POST /badges/grant` runs the criteria over every member, and
    recorded activities award them as facts move. Admin key."""
    return badges.create_badge(
        ctx,
        name=body.name,
        description=body.description,
        kind=body.kind,
        criteria=None if body.criteria is None else body.criteria.model_dump(),
    )


@router.get("/badges", response_model=list[BadgeOut])
@blocking
def list_badges(ctx: Reader) -> list[dict[str, Any]]:
    """List the badges

    The tenant's badges and titles, oldest first, with their criteria."""
    return badges.list_badges(ctx)


@router.post("/badges/grant", response_model=GrantOut)
@blocking
def grant_all(ctx: Writer) -> dict[str, Any]:
    """Grant every automatic badge

    Run every badge with criteria now, set-based over every member: each member who meets a
    badge's criteria and lacks it is awarded it once."""
    return badges.grant_badges(ctx)


@router.post("/badges/{badge_id}/grant", response_model=GrantOut)
@blocking
def grant_one(ctx: Writer, badge_id: BadgeId) -> dict[str, Any]:
    """Grant one automatic badge

    Run one badge's criteria now over every member. Unknown: 404 `badge_not_found`."""
    return badges.grant_badges(ctx, badge_id=badge_id)


@router.post(
    "/badges/{badge_id}/awards", status_code=status.HTTP_201_CREATED, response_model=AwardOut
)
@blocking
def award(ctx: Writer, badge_id: BadgeId, body: AwardIn, response: Response) -> dict[str, Any]:
    """Award a badge by hand

    Award a badge or title to a member by hand, with the reason. Awarded already: 200 with
    `Idempotent-Replayed: true`, unchanged."""
    awarded, replayed = badges.award_badge(
        ctx, badge_id=badge_id, member_id=body.member_id, reason=body.reason
    )
    if replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return awarded


@router.get("/members/{member_id}/badges", response_model=MemberBadgesOut)
@blocking
def member_badges(ctx: Reader, member_id: MemberId) -> dict[str, Any]:
    """List a member's badges

    A member's badges and titles in the order they were awarded, and the title it carries
    (the latest title awarded)."""
    return badges.member_badges(ctx, member_id=member_id)


@router.post("/certificates", status_code=status.HTTP_201_CREATED, response_model=CertificateOut)
@blocking
def issue(ctx: Admin, request: Request, body: CertificateIn) -> dict[str, Any]:
    """Issue a certificate

    Issue a 授权书 (an agent's authorization: tier, territory, validity) or a 荣誉证书 (an
    honour), rendered as a PDF with the holder's Chinese name as text (`pdf_url`) and a
    verification `code` anyone can check at `GET /certificates/verify/{code}` or on the page
    `/verify/{code}`. Admin key."""
    return certificates.issue_certificate(
        ctx, server_key=app_state(request).settings.secret_key, **body.model_dump()
    )


@router.get("/certificates/verify/{code}", response_model=VerificationOut, openapi_extra=NO_KEY)
async def verify(request: Request, code: VerificationCode) -> dict[str, Any]:
    """Verify a certificate

    Check a certificate's code without a key: who holds it, what it certifies and until when,
    and whether it is valid now (`valid`, `expired`, `not_yet_valid`). A code that is unknown or
    was altered: 404 `certificate_code_invalid`; a revoked certificate: 409
    `certificate_revoked`."""
    state = app_state(request)
    return await run_use_case(
        state.db,
        certificates.verify_code,
        state.db,
        server_key=state.settings.secret_key,
        code=code,
        now=state.clock.now(),
    )


@router.get("/certificates/{certificate_id}", response_model=CertificateOut)
@blocking
def get_certificate(ctx: Reader, request: Request, certificate_id: CertificateId) -> dict[str, Any]:
    """Read a certificate

    A certificate with its verification code and the URLs of its PDF and its public page."""
    return certificates.get_certificate(
        ctx, server_key=app_state(request).settings.secret_key, certificate_id=certificate_id
    )


@router.get(
    "/certificates/{certificate_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The certificate"}},
)
@blocking
def certificate_pdf(ctx: Reader, request: Request, certificate_id: CertificateId) -> Response:
    """Download a certificate's PDF

    The certificate as a PDF (A4 landscape) with Chinese text: the holder's name, what it
    certifies, its validity and its verification code."""
    pdf = certificates.certificate_pdf(
        ctx, server_key=app_state(request).settings.secret_key, certificate_id=certificate_id
    )
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{certificate_id}.pdf"'},
    )


@router.post("/certificates/{certificate_id}/revoke", response_model=CertificateOut)
@blocking
def revoke(
    ctx: Admin, request: Request, certificate_id: CertificateId, body: RevokeIn
) -> dict[str, Any]:
    """Revoke a certificate

    Revoke a certificate with the reason: its code no longer verifies (409 `certificate_revoked`).
    Revoked already: answered as it is. Admin key."""
    return certificates.revoke_certificate(
        ctx,
        server_key=app_state(request).settings.secret_key,
        certificate_id=certificate_id,
        reason=body.reason,
    )


_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;background:#faf7ef}}
main{{max-width:36rem;margin:3rem auto;padding:2rem;background:#fff;border:3px solid #b8860b}}
h1{{margin-top:0;color:#8a6508}} dt{{color:#666;margin-top:.8rem}} dd{{margin:0;font-size:1.15rem}}
.bad{{color:#a61b1b}} .ok{{color:#1b7a2e}}
</style></head><body><main>{content}</main></body></html>"""


def _field(label: str, value: Any) -> str:
    if value in (None, ""):
        return ""
    return f"<dt>{html.escape(label)}</dt><dd>{html.escape(str(value))}</dd>"


def _page_refusal(description: str) -> dict[str, Any]:
    """A refusal of the page: the page itself, or the error as JSON to a client that asks
    for JSON (`Accept: application/json`)."""
    return {
        "description": description,
        "content": {
            "text/html": {"schema": {"type": "string"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}},
        },
    }


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return "application/json" in accept and "text/html" not in accept


@public.get(
    "/verify/{code}",
    response_class=HTMLResponse,
    response_model=None,
    openapi_extra=NO_KEY,
    responses={
        200: {"description": "The page: who, what and until when, and whether it is valid."},
        404: _page_refusal(
            "A code that is unknown or was altered (`certificate_code_invalid`): the page "
            "says the certificate cannot be verified."
        ),
        409: _page_refusal(
            "A revoked certificate (`certificate_revoked`): the page says it is revoked."
        ),
    },
)
async def verify_page(request: Request, code: VerificationCode) -> HTMLResponse | JSONResponse:
    """Certificate verification page

    The public page of a certificate's code, without a key, in the language of
    `Accept-Language`: who holds it, what it certifies, until when, and whether it is valid. A
    code that is unknown or altered, or a revoked certificate, gets the page saying so (or, to
    `Accept: application/json`, the error)."""
    state = app_state(request)
    lang = "zh-CN" if get_locale() == "zh_CN" else "en"

    def t(key: str, **params: Any) -> str:
        return translate(f"community.verify.{key}", **params)

    try:
        found = await run_use_case(
            state.db,
            certificates.verify_code,
            state.db,
            server_key=state.settings.secret_key,
            code=code,
            now=state.clock.now(),
        )
    except DomainError as exc:
        if _wants_json(request):
            return JSONResponse(error_body(exc.code, error_message(exc)), status_code=exc.status)
        refused = html.escape(error_message(exc))
        content = f"<h1>{html.escape(t('title'))}</h1><p class='bad'>{refused}</p>"
        return HTMLResponse(
            _PAGE.format(lang=lang, title=html.escape(t("title")), content=content),
            status_code=exc.status,
        )
    verdict = t(f"status.{found['status']}")
    until = found["valid_until"].date().isoformat() if found["valid_until"] else t("no_end")
    content = "".join(
        [
            f"<h1>{html.escape(t('title'))}</h1>",
            f"<p class='{'ok' if found['valid'] else 'bad'}'>{html.escape(verdict)}</p><dl>",
            _field(t("brand"), found["brand"]),
            _field(t("holder"), found["holder_name"]),
            _field(t("kind"), t(f"kind.{found['kind']}")),
            _field(t("what"), found["title"]),
            _field(t("tier"), found["tier"]),
            _field(t("territory"), found["territory"]),
            _field(t("citation"), found["citation"]),
            _field(t("valid_from"), found["valid_from"].date().isoformat()),
            _field(t("valid_until"), until),
            "</dl>",
        ]
    )
    return HTMLResponse(_PAGE.format(lang=lang, title=html.escape(t("title")), content=content))
