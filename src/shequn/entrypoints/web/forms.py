"""Forms as people fill them in: each value read from the text typed, each mistake kept beside
its field (in the reader's language), and everything typed kept for the form shown again."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from shequn.entrypoints.rendering import error_message
from shequn.errors import DomainError
from shequn.i18n import translate
from shequn.money import MAX_AMOUNT_FEN

FORM_ERROR = "_form"  # a mistake of the whole form, not of one field
LONGEST_VALUE = 2000

_YUAN = re.compile(r"^(\d{1,12})(?:\.(\d{1,2}))?$")
_PERCENT = re.compile(r"^(\d{1,3})(?:\.(\d{1,2}))?$")


def yuan_to_fen(text: str) -> int | None:
    """`"12.3"` → 1230 fen, read digit by digit (no float in between); None if not an amount."""
    match = _YUAN.match(text.replace(",", "").replace("¥", "").strip())
    if match is None:
        return None
    whole, cents = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(cents)


def percent_to_bp(text: str) -> int | None:
    """`"12.5"` → 1250 bp; None if not a percentage with at most two decimals."""
    match = _PERCENT.match(text.replace("%", "").strip())
    if match is None:
        return None
    whole, part = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(part)


def fen_text(amount_fen: int | None) -> str:
    """An amount as typed into a field: `1230` → `12.30`."""
    if amount_fen is None:
        return ""
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def bp_text(rate_bp: int | None) -> str:
    """A rate as typed into a field: `1250` → `12.5`."""
    if rate_bp is None:
        return ""
    whole, part = divmod(rate_bp, 100)
    return f"{whole}.{part:02d}".rstrip("0").rstrip(".") if part else str(whole)


class Form:
    """The values of a submitted (or prefilled) form and what is wrong with them."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self.values: dict[str, str] = {}
        self.lists: dict[str, list[str]] = {}
        self.errors: dict[str, str] = {}
        for name, value in (values or {}).items():
            self.values[name] = "" if value is None else str(value)[:LONGEST_VALUE]

    @classmethod
    def submitted(cls, items: Iterable[tuple[str, Any]]) -> Form:
        form = cls()
        for name, value in items:
            if not isinstance(value, str):
                continue
            text = value[:LONGEST_VALUE].replace("\x00", "")
            form.lists.setdefault(name, []).append(text)
            form.values.setdefault(name, text)
        return form

    @property
    def ok(self) -> bool:
        return not self.errors

    def get(self, name: str) -> str:
        return self.values.get(name, "")

    def all(self, name: str) -> list[str]:
        return self.lists.get(name, [])

    def fail(self, name: str, key: str, **params: Any) -> None:
        self.errors.setdefault(name, translate(key, **params))

    def refuse(self, exc: DomainError, *, fields: Mapping[str, str] | None = None) -> None:
        """Put a use case's refusal beside the field it names (its `field` parameter, mapped
        through `fields` when the form calls it otherwise), or above the form."""
        named = exc.params.get("field")
        name = FORM_ERROR
        if isinstance(named, str):
            name = (fields or {}).get(named, named)
            if name not in self.values and name not in (fields or {}).values():
                name = FORM_ERROR
        self.errors.setdefault(name, error_message(exc))

    def text(self, name: str, *, required: bool = False, max_length: int = 200) -> str | None:
        value = " ".join(self.get(name).split())
        if not value:
            if required:
                self.fail(name, "console.form.required")
            return None
        if len(value) > max_length:
            self.fail(name, "console.form.too_long", max=max_length)
            return None
        return value

    def raw(self, name: str, *, required: bool = False, max_length: int = 200) -> str | None:
        """The value exactly as typed (a password)."""
        value = self.get(name)
        if not value:
            if required:
                self.fail(name, "console.form.required")
            return None
        if len(value) > max_length:
            self.fail(name, "console.form.too_long", max=max_length)
            return None
        return value

    def yuan(
        self, name: str, *, required: bool = False, min_fen: int = 0, max_fen: int = MAX_AMOUNT_FEN
    ) -> int | None:
        text = self.get(name).strip()
        if not text:
            if required:
                self.fail(name, "console.form.required")
            return None
        fen = yuan_to_fen(text)
        if fen is None:
            self.fail(name, "console.form.yuan")
            return None
        if not min_fen <= fen <= max_fen:
            self.fail(
                name, "console.form.yuan_range", low=fen_text(min_fen), high=fen_text(max_fen)
            )
            return None
        return fen

    def percent(self, name: str, *, required: bool = False, max_bp: int = 10_000) -> int | None:
        text = self.get(name).strip()
        if not text:
            if required:
                self.fail(name, "console.form.required")
            return None
        bp = percent_to_bp(text)
        if bp is None or bp > max_bp:
            self.fail(name, "console.form.percent", high=bp_text(max_bp))
            return None
        return bp

    def integer(self, name: str, *, low: int, high: int, required: bool = False) -> int | None:
        text = self.get(name).strip()
        if not text:
            if required:
                self.fail(name, "console.form.required")
            return None
        if not text.isdigit() or not low <= int(text) <= high:
            self.fail(name, "console.form.integer", low=low, high=high)
            return None
        return int(text)

    def choice(self, name: str, options: Iterable[str], *, required: bool = True) -> str | None:
        value = self.get(name).strip()
        if not value:
            if required:
                self.fail(name, "console.form.required")
            return None
        if value not in set(options):
            self.fail(name, "console.form.choice")
            return None
        return value

    def checked(self, name: str) -> bool:
        return self.get(name) in ("on", "1", "true", "yes")
