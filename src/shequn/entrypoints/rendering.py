"""What use cases return and refuse, put into the words of the person reading it (the API's
caller, the command line's user): amounts as ¥ with two decimals, rates as % with one, states
and actions named in the reader's language, compliance findings with their message and
citation, and validation errors that name the field and the rule. Nobody's input is echoed
longer than `LONGEST_ECHO` characters."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from babel.lists import format_list

from shequn.compliance.rules import Finding, ReportRow
from shequn.errors import DomainError
from shequn.i18n import get_locale, translate
from shequn.money import format_percent, format_yuan

LONGEST_ECHO = 64

# The errors whose `status` and `action` name a state and an action of one state machine.
_MACHINES = {
    "order_transition_invalid": "order",
    "withdrawal_transition_invalid": "withdrawal",
}


def _clipped(text: str) -> str:
    return text if len(text) <= LONGEST_ECHO else text[: LONGEST_ECHO - 1] + "…"


def _shown(name: str, value: Any, machine: str | None) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if name.endswith("_fen"):
            return format_yuan(value)
        if name.endswith("_bp"):
            return format_percent(value)
        return value
    if isinstance(value, str):
        if machine is not None and name in ("status", "action"):
            return translate(f"{machine}.{name}.{value}")
        return _clipped(value)
    return value


def message(key: str, params: Mapping[str, Any], *, machine: str | None = None) -> str:
    """The text of `key` in the current language, its parameters shown for a person."""
    return translate(key, **{k: _shown(k, v, machine) for k, v in params.items()})


def error_message(exc: DomainError, params: Mapping[str, Any] | None = None) -> str:
    """The message of a refusal (`params`: the error's own, less what the caller took)."""
    shown = exc.params if params is None else params
    return message(f"error.{exc.code}", shown, machine=_MACHINES.get(exc.code))


def finding_shown(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "severity": finding.severity.value,
        "message": message(finding.message_key, finding.params),
        "citation": translate(finding.citation_key),
        "params": finding.params,
    }


def findings_list(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    return [finding_shown(f) for f in findings]


def report_row_shown(row: ReportRow) -> dict[str, Any]:
    return {
        "figure": row.figure,
        "value": row.value,
        "state": row.state.value,
        "message": message(row.message_key, row.params),
        "citation": translate(row.citation_key),
        "params": row.params,
    }


def findings_shown(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with its `findings` (and a compliance report's `live_rows`) rendered."""
    if "findings" not in data:
        return data
    shown = {**data, "findings": findings_list(data["findings"])}
    if "live_rows" in data:
        shown["live_rows"] = [report_row_shown(r) for r in data["live_rows"]]
    return shown


# --- validation errors -------------------------------------------------------------------------

_WHERE = ("body", "query", "path", "header", "cookie")
# The rules a request may break, each with a text (`validation.<type>`); the context values a
# text may name come from the error itself.
_RULES = frozenset(
    {
        "missing",
        "extra_forbidden",
        "int_type",
        "int_parsing",
        "int_from_float",
        "float_type",
        "string_type",
        "bool_type",
        "bool_parsing",
        "list_type",
        "dict_type",
        "model_type",
        "model_attributes_type",
        "literal_error",
        "enum",
        "string_too_long",
        "string_too_short",
        "too_long",
        "too_short",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "json_invalid",
        "value_error",
        "none_required",
    }
)
_CONTEXT = ("max_length", "min_length", "gt", "ge", "lt", "le", "expected")
SHOWN_ERRORS = 3


def field_name(loc: Sequence[Any]) -> str:
    """`("body", "lines", 0, "quantity")` → `lines[0].quantity`; the body itself by name."""
    parts = list(loc)
    where = parts.pop(0) if parts and parts[0] in _WHERE else None
    if where == "body" and parts and isinstance(parts[0], int) and len(parts) == 1:
        parts = []  # a JSON error gives the position it was found at
    if not parts:
        return translate("validation.field.body") if where in (None, "body") else str(where)
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += ("." if name else "") + _clipped(str(part))
    return name


def _choices(expected: str) -> str:
    """Pydantic's list of allowed values (`'csv' or 'parquet'`, `'a', 'b' or 'c'`) joined in
    the reader's language (`'csv' 或 'parquet'`)."""
    items = [item.strip() for item in re.split(r",| or ", expected) if item.strip()]
    if len(items) < 2:
        return expected
    return format_list(items, style="or", locale=get_locale())


def validation_error_shown(error: Mapping[str, Any]) -> dict[str, Any]:
    """One of pydantic's errors as the API shows it: where, which rule, and in words."""
    loc = [_clipped(str(p)) if isinstance(p, str) else p for p in error.get("loc", ())]
    kind = str(error.get("type", ""))
    context = error.get("ctx") or {}
    params = {k: context[k] for k in _CONTEXT if k in context}
    if "expected" in params:
        params["expected"] = _choices(str(params["expected"]))
    params["field"] = field_name(loc)
    key = f"validation.{kind}" if kind in _RULES else "validation.other"
    return {
        "loc": [str(p) for p in loc],
        "type": kind,
        "message": translate(key, **{k: _clipped(str(v)) for k, v in params.items()}),
    }


def validation_message(shown: Sequence[Mapping[str, Any]]) -> str:
    """The summary of a refused request: its first errors in words."""
    texts = [str(e["message"]) for e in shown[:SHOWN_ERRORS]]
    more = len(shown) - SHOWN_ERRORS
    if more > 0:
        texts.append(translate("validation.more", count=more))
    return translate("error.validation_error", fields="; ".join(texts))
