"""An import's report in the reader's language, for the command line and the API: each row
error as `{line, field?, code, message}`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shequn.i18n import translate

LONGEST_ECHO = 64  # characters of a value from the file repeated in a message


def _echo(value: Any) -> Any:
    if isinstance(value, str) and len(value) > LONGEST_ECHO:
        return value[: LONGEST_ECHO - 1] + "…"
    return value


def error_shown(error: Mapping[str, Any]) -> dict[str, Any]:
    params = {k: _echo(v) for k, v in error["params"].items()}
    shown: dict[str, Any] = {"line": error["line"]}
    if error["field"] is not None:
        shown["field"] = error["field"]
    shown["code"] = error["code"]
    shown["message"] = translate(
        f"transfer.error.{error['code']}", line=error["line"], field=error["field"] or "", **params
    )
    return shown


def report_shown(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report with a message for every error (and without the raw parameters)."""
    return {**report, "errors": [error_shown(e) for e in report["errors"]]}
