"""Translations for every user-facing string (Simplified Chinese and English).

Catalogs are gettext `.po` files read with Babel at first use, one file per area of the system
in each language's folder; the message ids are stable keys (`error.order_not_found`), and both
languages must carry every key (checked by the test suite).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from importlib import resources
from typing import Any, Literal

from babel.messages.pofile import read_po

Locale = Literal["zh_CN", "en"]
LOCALES: tuple[Locale, ...] = ("zh_CN", "en")
DEFAULT_LOCALE: Locale = "zh_CN"

_current: ContextVar[Locale] = ContextVar("shequn_locale", default=DEFAULT_LOCALE)


@cache
def catalog(locale: Locale) -> dict[str, str]:
    """Every message of `locale`: the catalog files of its folder (one per area of the system,
    `shequn.po` first), merged; a key defined twice is a mistake the test suite catches."""
    folder = resources.files("shequn.i18n").joinpath(f"locales/{locale}/LC_MESSAGES")
    files = sorted(
        (f for f in folder.iterdir() if f.name.endswith(".po")),
        key=lambda f: (f.name != "shequn.po", f.name),
    )
    messages: dict[str, str] = {}
    for path in files:
        with path.open("rb") as handle:
            parsed = read_po(handle, locale=locale)
        messages.update({str(m.id): str(m.string) for m in parsed if m.id and m.string})
    return messages


def set_locale(locale: Locale) -> None:
    _current.set(locale)


@contextmanager
def use_locale(locale: Locale) -> Iterator[None]:
    """`locale` inside the block, the one before it after (for code that runs outside a
    request's own context, such as the HTTP protocol's callbacks)."""
    token = _current.set(locale)
    try:
        yield
    finally:
        _current.reset(token)


def get_locale() -> Locale:
    return _current.get()


def negotiate(accept_language: str | None, fallback: Locale = DEFAULT_LOCALE) -> Locale:
    """Pick a supported locale from an Accept-Language header."""
    if not accept_language:
        return fallback
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((quality, -index, tag.strip().lower()))
    for quality, _, tag in sorted(ranked, reverse=True):
        if quality <= 0:
            continue
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return fallback


def translate(key: str, /, **params: Any) -> str:
    """Return the message for `key` in the current language, formatted with `params` (any
    name may be a parameter, `key` and `locale` included)."""
    return translate_in(_current.get(), key, **params)


def translate_in(locale: Locale, key: str, /, **params: Any) -> str:
    """Return the message for `key` in `locale`, formatted with `params`."""
    text = catalog(locale).get(key)
    if text is None:
        text = catalog("en").get(key, key)
    if params:
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            return text
    return text


_ = translate
