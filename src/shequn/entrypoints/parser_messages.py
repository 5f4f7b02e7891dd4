"""The command line's parser errors (a missing argument, an unknown option, a bad value) in the
chosen language.

Typer builds these messages in English inside its exception classes, and a few more through
gettext in `typer.core`. The error screen is drawn by `typer.rich_utils.rich_format_error`;
`install()` puts a wrapper in its place that swaps the English message for one from Shequn's
catalog, and points `typer.core`'s gettext lookups at the catalog too. The exception classes
are recognised by name, as Typer itself does, so that nothing private is imported; one Typer
would not know is shown in English, as before.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Callable, Sequence
from typing import Any

from typer import core as typer_core
from typer import rich_utils

from shequn.i18n import translate

# Texts that `typer.core` passes through gettext → our catalog key.
GETTEXT_MESSAGES: dict[str, str] = {
    "No such command {name!r}.": "cli.parser.no_such_command",
    "Missing command.": "cli.parser.missing_command",
    "Aborted!": "cli.aborted",
}

EXTRA_ARGUMENTS_PREFIX = "Got unexpected extra argument(s) ("

# Typer checks values with pydantic; the kinds of error a Shequn option can meet → our key.
_VALUE_ERROR_KEYS = {
    "int_parsing": "cli.parser.not_an_integer",
    "int_from_float": "cli.parser.not_an_integer",
    "float_parsing": "cli.parser.not_a_number",
    "bool_parsing": "cli.parser.not_a_boolean",
}

_MISSING_KEYS = {
    "argument": "cli.parser.missing_argument",
    "option": "cli.parser.missing_option",
}


def _no_preparation() -> None:
    return None


_prepare: Callable[[], None] = _no_preparation


def _gettext(message: str) -> str:
    key = GETTEXT_MESSAGES.get(message)
    if key is None:
        return message
    _prepare()
    return translate(key)


_ENV_VAR_NOTE = re.compile(r" \(env var: '([^']*)'\)$")


def _param_hint(exc: Any) -> str:
    hint = getattr(exc, "param_hint", None)
    if hint is None:
        param = getattr(exc, "param", None)
        if param is None:
            return ""
        text = str(param.get_error_hint())
        # Typer appends the option's environment variable in English.
        return _ENV_VAR_NOTE.sub(
            lambda m: translate("cli.parser.env_var_note", name=m.group(1)), text
        )
    if isinstance(hint, str):
        return hint
    if isinstance(hint, Sequence):
        return " / ".join(repr(h) for h in hint)
    return str(hint)


def _value_problem(exc: Exception) -> str | None:
    """What was wrong with the value, from the pydantic error Typer raised it from."""
    errors = getattr(exc.__cause__, "errors", None)
    if not callable(errors):
        return None
    details = errors()
    if not details:
        return None
    key = _VALUE_ERROR_KEYS.get(str(details[0].get("type")))
    if key is None:
        return None
    return translate(key, value=repr(details[0].get("input")))


def localised_message(exc: Exception) -> str | None:
    """The message for a parser error in the current language, or None for one this module
    does not know (its own English message is then shown)."""
    kind = type(exc).__name__
    if kind == "MissingParameter":
        param = getattr(exc, "param", None)
        param_type = getattr(exc, "param_type", None) or getattr(param, "param_type_name", None)
        key = _MISSING_KEYS.get(str(param_type), "cli.parser.missing_parameter")
        return translate(key, hint=_param_hint(exc))
    if kind == "NoSuchOption":
        text = translate("cli.parser.no_such_option", name=getattr(exc, "option_name", ""))
        possibilities = getattr(exc, "possibilities", None)
        if possibilities:
            options = ", ".join(sorted(possibilities))
            text += " " + translate("cli.parser.possible_options", options=options)
        return text
    if kind == "BadParameter":
        message = _value_problem(exc) or str(getattr(exc, "message", ""))
        hint = _param_hint(exc)
        if hint:
            return translate("cli.parser.invalid_value_for", hint=hint, message=message)
        return translate("cli.parser.invalid_value", message=message)
    message = str(getattr(exc, "message", ""))
    if kind == "UsageError" and message.startswith(EXTRA_ARGUMENTS_PREFIX):
        extra = message[len(EXTRA_ARGUMENTS_PREFIX) : -1]
        return translate("cli.parser.extra_arguments", args=extra)
    return None


def _localised(render: Callable[[Any], None]) -> Callable[[Any], None]:
    def render_error(exc: Any) -> None:
        _prepare()
        text = localised_message(exc)
        if text is not None:
            exc.format_message = lambda: text
        render(exc)

    return render_error


def install(before: Callable[[], None] = _no_preparation) -> None:
    """Localise the parser's error screen for this process (idempotent). `before` runs first
    on each error: the language is chosen there, since a parser error can come before any
    command's own code has run."""
    global _prepare
    _prepare = before
    if getattr(typer_core, "_", None) is gettext.gettext:
        typer_core._ = _gettext  # type: ignore[attr-defined]
    render = rich_utils.rich_format_error
    if getattr(render, "__name__", "") != "render_error":
        rich_utils.rich_format_error = _localised(render)  # type: ignore[assignment]
