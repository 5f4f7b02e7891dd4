"""Share codes, targets and channel states (pure)."""

from __future__ import annotations

import re
import secrets

from shequn.errors import InvalidInput
from shequn.growth.settings.rules import TARGET_TYPES

CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i: read aloud or typed
CODE_LENGTH = 8
STATE_MAX = 30  # as WeChat Work's contact-me codes carry
_TARGET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_VISITOR = re.compile(r"[A-Za-z0-9_-]{16,40}")


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def is_code(value: str) -> bool:
    return len(value) == CODE_LENGTH and all(c in CODE_ALPHABET for c in value)


def new_visitor() -> str:
    return secrets.token_urlsafe(16)


def is_visitor(value: str | None) -> bool:
    return value is not None and _VISITOR.fullmatch(value) is not None


def clean_target(target_type: str, target_id: str | None) -> tuple[str, str]:
    """The target as stored ("" for none): a product, page or event needs an id; a community
    may name one."""
    if target_type not in TARGET_TYPES:
        raise InvalidInput("share_target_type_invalid", target_type=target_type)
    if target_id is None or target_id == "":
        if target_type != "community":
            raise InvalidInput("share_target_id_required", target_type=target_type)
        return target_type, ""
    if not _TARGET_ID.fullmatch(target_id):
        raise InvalidInput("share_target_id_invalid", target_id=target_id[:64])
    return target_type, target_id


def clean_state(state: str | None) -> str:
    """A channel state as stored ("" for none): printable, at most 30 characters."""
    if state is None:
        return ""
    clean = state.strip()
    if not 1 <= len(clean) <= STATE_MAX or not clean.isprintable():
        raise InvalidInput("share_state_invalid", max=STATE_MAX)
    return clean
