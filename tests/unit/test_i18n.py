"""Both catalogs are complete: every key used in the code has a Chinese and an English text."""

from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest

from shequn.i18n import catalog, negotiate, translate_in

SRC = Path(__file__).resolve().parents[2] / "src" / "shequn"
ERROR_CLASSES = {"DomainError", "InvalidInput", "NotFound", "Conflict", "Forbidden", "Unauthorized"}


def _used_keys() -> set[str]:
    keys: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            first = node.args[0]
            name = (
                node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            )
            if not isinstance(first, ast.Constant) or not isinstance(first.value, str):
                continue
            if name in ERROR_CLASSES:
                keys.add(f"error.{first.value}")
            elif name in {"translate", "_t", "_"} and "." in first.value:
                keys.add(first.value)
            elif name == "Finding" and len(node.args) >= 4:
                for arg in node.args[2:4]:
                    if isinstance(arg, ast.Constant):
                        keys.add(str(arg.value))
    return keys


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_no_key_is_defined_in_two_catalog_files() -> None:
    from babel.messages.pofile import read_po

    for locale in ("zh_CN", "en"):
        seen: dict[str, str] = {}
        folder = SRC / "i18n" / "locales" / locale / "LC_MESSAGES"
        for path in sorted(folder.glob("*.po")):
            with path.open("rb") as handle:
                for message in read_po(handle, locale=locale):
                    if message.id:
                        assert str(message.id) not in seen, (message.id, path.name)
                        seen[str(message.id)] = path.name


def test_catalogs_have_the_same_keys_and_no_empty_text() -> None:
    zh, en = catalog("zh_CN"), catalog("en")
    assert set(zh) == set(en)
    assert all(zh.values())
    assert all(en.values())


def test_every_key_used_in_the_code_is_translated() -> None:
    missing = sorted(_used_keys() - set(catalog("zh_CN")))
    assert missing == []


def test_placeholders_agree_between_languages() -> None:
    zh, en = catalog("zh_CN"), catalog("en")
    assert {k: _fields(v) for k, v in zh.items()} == {k: _fields(v) for k, v in en.items()}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "zh_CN"),
        ("en-US,en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("fr-FR, en;q=0.5", "en"),
        ("en;q=0.2, zh;q=0.8", "zh_CN"),
        ("de", "zh_CN"),
    ],
)
def test_language_negotiation(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_translate_formats_and_falls_back_to_the_key() -> None:
    assert translate_in("en", "error.member_not_found", id="m1") == "Member m1 does not exist."
    assert translate_in("zh_CN", "no.such.key") == "no.such.key"
    # any name may be a parameter, the ones of the function's own arguments included
    assert translate_in("en", "error.idempotency_key_reused", key="k1", locale="x") == (
        translate_in("en", "error.idempotency_key_reused", key="k1")
    )


def test_the_parser_texts_translated_still_occur_in_typer() -> None:
    """If Typer rewords a message, its translation would silently stop applying."""
    import typer

    from shequn.entrypoints import parser_messages

    source = "\n".join(p.read_text() for p in Path(typer.__file__).parent.rglob("*.py"))
    for english in [*parser_messages.GETTEXT_MESSAGES, parser_messages.EXTRA_ARGUMENTS_PREFIX]:
        assert english in source
    keys = set(parser_messages.GETTEXT_MESSAGES.values())
    assert keys <= set(catalog("zh_CN"))
    assert keys <= set(catalog("en"))
