"""What use cases return, put into the words of the person reading it (the API's caller, the
command line's user): compliance findings with their message and citation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shequn.compliance.rules import Finding
from shequn.i18n import translate


def finding_shown(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "severity": finding.severity.value,
        "message": translate(finding.message_key, **finding.params),
        "citation": translate(finding.citation_key),
        "params": finding.params,
    }


def findings_list(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    return [finding_shown(f) for f in findings]


def findings_shown(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with its `findings` rendered."""
    if "findings" not in data:
        return data
    return {**data, "findings": findings_list(data["findings"])}
