"""Roles and what each may do in the console, the lockout after repeated failures, the shape of
logins, passwords and one-time codes, and how long a session lives (pure)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shequn.errors import InvalidInput


class ConsoleRole(StrEnum):
    OWNER = "owner"
    OPERATOR = "operator"
    STAFF = "staff"  # a staff-account operator (个人号运营): only the members assigned to them
    READONLY = "readonly"


class Capability(StrEnum):
    VIEW = "view"  # dashboards, catalog, orders, money, plans (reading)
    OPERATE = "operate"  # the daily business: products, order actions, payouts, settlement
    ADMINISTER = "administer"  # plans, rebinding a member, console users
    MEMBERS = "members"  # the member list and member 360 (a staff operator: only their own)
    TAG = "tag"  # change a member's tags


ROLE_CAPABILITIES: dict[ConsoleRole, frozenset[Capability]] = {
    ConsoleRole.OWNER: frozenset(Capability),
    ConsoleRole.OPERATOR: frozenset(
        {Capability.VIEW, Capability.OPERATE, Capability.MEMBERS, Capability.TAG}
    ),
    ConsoleRole.STAFF: frozenset({Capability.MEMBERS, Capability.TAG}),
    ConsoleRole.READONLY: frozenset({Capability.VIEW, Capability.MEMBERS}),
}

ROLES = tuple(r.value for r in ConsoleRole)


def parse_role(raw: str) -> ConsoleRole:
    try:
        return ConsoleRole(raw)
    except ValueError:
        raise InvalidInput("console_role_invalid", role=raw, field="role") from None


def can(role: ConsoleRole, capability: Capability) -> bool:
    return capability in ROLE_CAPABILITIES[role]


def sees_only_assigned_members(role: ConsoleRole) -> bool:
    """A staff-account operator sees the members of the staff accounts assigned to them."""
    return role is ConsoleRole.STAFF


# --- logins and passwords --------------------------------------------------------------------

_LOGIN = re.compile(r"^[a-z0-9][a-z0-9._@+-]{2,79}$")
PASSWORD_MIN = 10
PASSWORD_MAX = 128


def clean_login(raw: str) -> str:
    """A console login as stored: trimmed, lower case, 3 to 80 of letters, digits and `._@+-`."""
    clean = raw.strip().lower()
    if not _LOGIN.match(clean):
        raise InvalidInput("console_login_invalid", field="login")
    return clean


def check_password(password: str, *, login: str | None = None) -> None:
    """Refuse a password too short, too long, of one repeated character or equal to the login."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidInput("password_length", low=PASSWORD_MIN, high=PASSWORD_MAX, field="password")
    if len(set(password)) < 3 or (login is not None and password.strip().lower() == login):
        raise InvalidInput("password_too_simple", field="password")


def clean_display_name(raw: str | None, fallback: str) -> str:
    clean = " ".join((raw or "").split()) or fallback
    if len(clean) > 80:
        raise InvalidInput("display_name_invalid", field="display_name")
    return clean


# --- lockout ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockoutPolicy:
    """After `max_failures` failures in a row a login is refused for `lock_minutes`, whatever
    the password; a success clears the count."""

    max_failures: int = 5
    lock_minutes: int = 15

    def locked_until(self, failures: int, now: datetime) -> datetime | None:
        """When a login that has now failed `failures` times in a row opens again (None:
        it stays open)."""
        if failures >= self.max_failures:
            return now + timedelta(minutes=self.lock_minutes)
        return None

    def attempts_left(self, failures: int) -> int:
        return max(0, self.max_failures - failures)


LOCKOUT = LockoutPolicy()


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and locked_until > now


def minutes_until(moment: datetime, now: datetime) -> int:
    """Whole minutes from `now` to `moment`, rounded up (a lock that ends in 10 s: 1 minute)."""
    seconds = (moment - now).total_seconds()
    return max(1, -(-int(seconds) // 60))


# --- sessions --------------------------------------------------------------------------------


class SessionKind(StrEnum):
    CONSOLE = "console"
    PORTAL = "portal"


@dataclass(frozen=True)
class SessionLife:
    idle: timedelta  # a session unused this long has ended
    absolute: timedelta  # and none lives longer than this
    touch_every: timedelta  # how stale `last_seen_at` may be before it is written again


SESSION_LIFE = {
    SessionKind.CONSOLE: SessionLife(timedelta(hours=12), timedelta(days=7), timedelta(minutes=5)),
    SessionKind.PORTAL: SessionLife(timedelta(days=30), timedelta(days=180), timedelta(hours=1)),
}


def session_alive(
    kind: SessionKind, *, created_at: datetime, last_seen_at: datetime, now: datetime
) -> bool:
    life = SESSION_LIFE[kind]
    return now - last_seen_at < life.idle and now - created_at < life.absolute


def needs_touch(kind: SessionKind, *, last_seen_at: datetime, now: datetime) -> bool:
    return now - last_seen_at >= SESSION_LIFE[kind].touch_every


def token_hash(raw_token: str) -> str:
    """What is stored of a session token or a one-time code (never the token itself)."""
    return hashlib.sha256(raw_token.encode()).hexdigest()


# --- one-time codes for the portal -----------------------------------------------------------

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
CODE_MAX_ATTEMPTS = 5
CODE_RESEND_AFTER = timedelta(seconds=60)


def clean_code(raw: str) -> str:
    clean = "".join(raw.split())
    if len(clean) != CODE_DIGITS or not clean.isdigit():
        raise InvalidInput("login_code_invalid", digits=CODE_DIGITS, field="code")
    return clean


def code_digest(code_id: str, code: str) -> str:
    """A code is stored as the hash of its row's id and the code, so that equal codes of two
    rows differ."""
    return token_hash(f"{code_id}:{code}")


def resend_wait_seconds(last_sent_at: datetime | None, now: datetime) -> int:
    """Seconds before another code may be sent (0: now)."""
    if last_sent_at is None:
        return 0
    left = (last_sent_at + CODE_RESEND_AFTER - now).total_seconds()
    return max(0, int(left + 0.999))
