"""Communities and venues (pure): the six elements 人 命 器 仪 场 领 as fields, venue kinds and
roles, the platform limits venues set, what each role feeds, and how groups are named."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from shequn.errors import InvalidInput


class MemberRole(StrEnum):
    MEMBER = "member"
    LEADER = "leader"  # 领: the community's opinion leaders
    LECTURER = "lecturer"
    AMBASSADOR = "ambassador"


class VenueKind(StrEnum):
    WECHAT_GROUP = "wechat_group"
    WECOM_GROUP = "wecom_group"  # 企业微信 external group
    QQ_GROUP = "qq_group"
    FORUM = "forum"
    WEIBO = "weibo"
    LIVE_ROOM = "live_room"
    OFFLINE_CLUB = "offline_club"
    STORE = "store"
    OTHER = "other"


class VenueRole(StrEnum):
    """What a venue is for (seed 004: Xiaomi's forum is its R&D centre, Weibo its marketing
    centre, WeChat its service centre, QQ space its sales centre, the club its emotional
    centre, the store its experience and after-sales centre)."""

    RND_FEEDBACK = "rnd_feedback"
    MARKETING = "marketing"
    CUSTOMER_SERVICE = "customer_service"
    SALES = "sales"
    EMOTIONAL = "emotional"
    EXPERIENCE = "experience"


# Members one group of the platform can hold; None where the platform sets no limit.
PLATFORM_LIMITS: Mapping[VenueKind, int | None] = {
    VenueKind.WECHAT_GROUP: 500,
    VenueKind.WECOM_GROUP: 500,
    VenueKind.QQ_GROUP: 2000,
    VenueKind.FORUM: None,
    VenueKind.WEIBO: None,
    VenueKind.LIVE_ROOM: None,
    VenueKind.OFFLINE_CLUB: None,
    VenueKind.STORE: None,
    VenueKind.OTHER: None,
}
# A WeCom group stops taking members who scan its QR code at 200.
WECOM_QR_JOIN_LIMIT = 200


@dataclass(frozen=True)
class Routing:
    """Where what happens in a venue of a role goes: the report it feeds, and how much
    sooner than usual a complaint raised there is escalated (percent of the normal time)."""

    feeds: str
    complaint_escalation_pct: int


ROUTINGS: Mapping[VenueRole, Routing] = {
    VenueRole.RND_FEEDBACK: Routing("product_reviews", 100),
    VenueRole.MARKETING: Routing("campaign_reports", 100),
    VenueRole.CUSTOMER_SERVICE: Routing("service_queue", 75),
    VenueRole.SALES: Routing("sales_reports", 100),
    VenueRole.EMOTIONAL: Routing("community_care", 50),
    VenueRole.EXPERIENCE: Routing("after_sales_queue", 75),
}


def routing_for(role: VenueRole) -> Routing:
    return ROUTINGS[role]


def platform_limit(kind: VenueKind, declared: int | None) -> int | None:
    """The venue's limit: the platform's, or a lower one the operator declared (a QQ group of
    a lower level holds fewer)."""
    default = PLATFORM_LIMITS[kind]
    if declared is None:
        return default
    if declared < 1 or (default is not None and declared > default):
        raise InvalidInput("venue_limit_invalid", limit=declared, platform=default or 0)
    return declared


def venue_kind(value: str) -> VenueKind:
    try:
        return VenueKind(value)
    except ValueError:
        raise InvalidInput("venue_kind_invalid", kind=value[:40]) from None


def venue_role(value: str) -> VenueRole:
    try:
        return VenueRole(value)
    except ValueError:
        raise InvalidInput("venue_role_invalid", role=value[:40]) from None


def member_role(value: str) -> MemberRole:
    try:
        return MemberRole(value)
    except ValueError:
        raise InvalidInput("community_role_invalid", role=value[:40]) from None


def clean_text(value: str | None, *, field: str, max_length: int, required: bool = False) -> str:
    """Text trimmed of surrounding space, within `max_length` characters."""
    clean = " ".join((value or "").split())
    if required and not clean:
        raise InvalidInput("field_required", field=field)
    if len(clean) > max_length:
        raise InvalidInput("field_too_long", field=field, max=max_length)
    return clean


# --- group names ----------------------------------------------------------------------------

NAME_VARIABLES = frozenset({"community", "title", "number", "region", "interest"})
DEFAULT_GROUP_PATTERN = "{community}{number}群"
MAX_GROUP_NAME = 80


def check_group_pattern(pattern: str) -> str:
    """A group name pattern: text with {community}, {title}, {number}, {region}, {interest};
    {number} is required so that every group of a community has its own name."""
    clean = clean_text(pattern, field="group_name_pattern", max_length=60, required=True)
    try:
        names = {field for _, field, spec, conv in string.Formatter().parse(clean) if field}
        specs = [(spec, conv) for _, field, spec, conv in string.Formatter().parse(clean) if field]
    except ValueError:
        raise InvalidInput("group_pattern_invalid") from None
    if not names <= NAME_VARIABLES or any(spec or conv for spec, conv in specs):
        raise InvalidInput("group_pattern_invalid")
    if "number" not in names:
        raise InvalidInput("group_pattern_needs_number")
    return clean


def group_name(
    pattern: str,
    *,
    community: str,
    title: str,
    number: int,
    region: str | None = None,
    interest: str | None = None,
) -> str:
    """The name of a community's group number `number`."""
    name = pattern.format(
        community=community,
        title=title,
        number=number,
        region=region or "",
        interest=interest or "",
    )
    return name[:MAX_GROUP_NAME]
