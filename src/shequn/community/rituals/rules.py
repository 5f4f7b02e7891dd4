"""Rituals (仪), pure: welcome templates and their variables, badge criteria over facts,
certificate verification codes, and the milestones of the chronicle (大事记)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from shequn.errors import InvalidInput

# --- welcome templates ----------------------------------------------------------------------

TEMPLATE_VARIABLES = frozenset({"name", "title", "referrer", "group", "community", "staff"})
MAX_TEMPLATE_LENGTH = 1_000


class Trigger(StrEnum):
    GROUP_JOINED = "group_joined"
    STAFF_ADDED = "staff_added"


def trigger_of(value: str) -> Trigger:
    try:
        return Trigger(value)
    except ValueError:
        raise InvalidInput("template_trigger_invalid", trigger=value[:40]) from None


def check_template(text: str) -> str:
    """A template's text: at most 1,000 characters, placeholders among {name}, {title},
    {referrer}, {group}, {community}, {staff} (a literal brace is written twice)."""
    body = text.strip()
    if not body:
        raise InvalidInput("field_required", field="body")
    if len(body) > MAX_TEMPLATE_LENGTH:
        raise InvalidInput("field_too_long", field="body", max=MAX_TEMPLATE_LENGTH)
    try:
        parsed = list(string.Formatter().parse(body))
    except ValueError:
        raise InvalidInput("template_invalid") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in TEMPLATE_VARIABLES:
            raise InvalidInput("template_variable_unknown", variable=name[:40])
        if spec or conversion:
            raise InvalidInput("template_invalid")
    return body


def render_template(text: str, variables: Mapping[str, str | None]) -> str:
    """The template with its variables filled in; a variable without a value is left empty."""
    values = {name: variables.get(name) or "" for name in TEMPLATE_VARIABLES}
    return text.format(**values)


# --- badge criteria -------------------------------------------------------------------------

# The facts of activities a criterion can test: each member's count of a kind of activity.
ACTIVITY_FACTS: Mapping[str, str] = {
    "messages": "message",
    "likes": "like",
    "visits": "visit",
    "check_ins": "check_in",
    "adds": "add",
    "replies": "reply",
    "feedback": "feedback",
}
MEMBER_FACTS = (
    "paid_order_count",
    "lifetime_order_count",
    "paid_total_fen",
    "direct_count",
    "team_count",
)
# Facts a criterion can test, each a whole number per member.
FACTS = frozenset({*MEMBER_FACTS, "communities", *ACTIVITY_FACTS})
OPERATORS = (">=", ">", "=", "<=", "<")
MAX_CONDITIONS = 10
MAX_FACT_VALUE = 10**13


class BadgeKind(StrEnum):
    BADGE = "badge"
    TITLE = "title"  # a title the member carries (称号)


@dataclass(frozen=True)
class Condition:
    fact: str
    op: str
    value: int


def parse_criteria(raw: Any) -> list[Condition]:
    """`{"all": [{"fact": "check_ins", "op": ">=", "value": 21}, …]}`: every condition must
    hold. Refuses unknown facts and operators and values out of range."""
    if not isinstance(raw, Mapping) or set(raw) != {"all"}:
        raise InvalidInput("badge_criteria_invalid")
    items = raw["all"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_CONDITIONS:
        raise InvalidInput("badge_criteria_invalid")
    out: list[Condition] = []
    for item in items:
        if not isinstance(item, Mapping) or set(item) != {"fact", "op", "value"}:
            raise InvalidInput("badge_criteria_invalid")
        fact, op, value = item["fact"], item["op"], item["value"]
        if not isinstance(fact, str) or fact not in FACTS:
            raise InvalidInput("badge_fact_unknown", fact=str(fact)[:40])
        if op not in OPERATORS:
            raise InvalidInput("badge_operator_invalid", op=str(op)[:8])
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 0 <= value <= MAX_FACT_VALUE
        ):
            raise InvalidInput("badge_value_invalid", fact=fact)
        out.append(Condition(fact, op, value))
    return out


def criteria_json(conditions: Sequence[Condition]) -> dict[str, Any]:
    return {"all": [{"fact": c.fact, "op": c.op, "value": c.value} for c in conditions]}


def holds(condition: Condition, value: int) -> bool:
    op = condition.op
    if op == ">=":
        return value >= condition.value
    if op == ">":
        return value > condition.value
    if op == "=":
        return value == condition.value
    if op == "<=":
        return value <= condition.value
    return value < condition.value


def meets(conditions: Sequence[Condition], facts: Mapping[str, int]) -> bool:
    """Whether a member with `facts` (a missing fact is 0) meets every condition."""
    return all(holds(c, facts.get(c.fact, 0)) for c in conditions)


# --- certificates ---------------------------------------------------------------------------


class CertificateKind(StrEnum):
    AUTHORIZATION = "authorization"  # 授权书: an agent's tier, territory and validity
    HONOUR = "honour"  # 荣誉证书


def certificate_kind(value: str) -> CertificateKind:
    try:
        return CertificateKind(value)
    except ValueError:
        raise InvalidInput("certificate_kind_invalid", kind=value[:40]) from None


SERIAL_LENGTH = 10
SIGNATURE_LENGTH = 16


def _b32(digest: bytes, length: int) -> str:
    text = base64.b32encode(digest).decode().rstrip("=")
    return text[:length]


def certificate_signature(
    secret: str,
    *,
    tenant_id: str,
    serial: str,
    certificate_id: str,
    member_id: str,
    kind: str,
    valid_until: datetime | None,
) -> str:
    """The signing part of a certificate's code: an HMAC-SHA256 keyed with the deployment's
    secret over what the certificate states, so a code cannot be made or altered without it."""
    until = valid_until.isoformat() if valid_until is not None else "-"
    message = "\x00".join(
        ("shequn.certificate", tenant_id, serial, certificate_id, member_id, kind, until)
    )
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return _b32(digest, SIGNATURE_LENGTH)


def certificate_code(tenant_id: str, serial: str, signature: str) -> str:
    """`<tenant>-<serial>-<signature>`: the tenant leads, so the public check finds the
    certificate by the tenant's own key."""
    return f"{tenant_id}-{serial}-{signature}"


def parse_certificate_code(code: str) -> tuple[str, str, str] | None:
    """(tenant id, serial, signature) of a code of the right shape, else None."""
    parts = code.strip().split("-")
    if len(parts) != 3:
        return None
    tenant_id, serial, signature = parts
    if not tenant_id.startswith("tn_") or len(tenant_id) > 40:
        return None
    if len(serial) != SERIAL_LENGTH or len(signature) != SIGNATURE_LENGTH:
        return None
    if not (serial.isalnum() and signature.isalnum() and serial.isascii()):
        return None
    return tenant_id, serial, signature


def signatures_match(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


# --- the chronicle --------------------------------------------------------------------------

MEMBER_MILESTONES = (10, 50, 100, 150, 500, 1_000, 5_000, 10_000, 50_000, 100_000, 1_000_000)
MILLION_MONTH_FEN = 100_000_000  # ¥1,000,000


def member_milestones_crossed(before: int, after: int) -> list[int]:
    """The member counts a community reached going from `before` to `after` members."""
    return [m for m in MEMBER_MILESTONES if before < m <= after]


def anniversaries(founded: datetime, now: datetime) -> list[int]:
    """The whole years since `founded` that have come by `now`."""
    years = now.year - founded.year
    if (now.month, now.day, now.time()) < (founded.month, founded.day, founded.time()):
        years -= 1
    return list(range(1, years + 1))


def anniversary_date(founded: datetime, years: int) -> datetime:
    try:
        return founded.replace(year=founded.year + years)
    except ValueError:  # founded on 29 February
        return founded.replace(year=founded.year + years, day=28)
