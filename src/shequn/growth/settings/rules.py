"""Growth settings and their validation (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from shequn.errors import InvalidInput

TARGET_TYPES = ("product", "page", "event", "community")
MAX_RULES = 50


@dataclass(frozen=True)
class GrowthSettings:
    """Everything growth reads from a tenant, with the defaults of a tenant that set none."""

    # Where a share link leads, per target type: a URL with `{target_id}` and `{code}`.
    share_url_templates: Mapping[str, str] = field(default_factory=dict)
    # The address that serves `/s/{code}` (empty: the address the API was called at).
    short_link_base: str = ""
    points_earn_bp: int = 100  # points per fen spent, in bp: 100 = one point per yuan
    fen_per_point: int = 1  # what a point is worth as a discount
    points_cap_bp: int = 5_000  # at most this share of an order may be paid with points
    points_expiry_days: int = 365
    points_rules: Mapping[str, int] = field(default_factory=dict)  # rule → points awarded
    stock_cover_limit_days: int = 60
    new_agent_monthly_sales: int = 30  # units per 30 days assumed for an agent without history
    buyback_window_days: int = 30
    # A first stock order of at least this much before an agent may sell from stock: 0 means
    # none. Anything above 0 is an entry fee in the form of goods (入门费), a compliance finding.
    min_first_stock_order_fen: int = 0
    buyback_price_bp: int = 9_000
    velocity_limit_per_hour: int = 5  # registrations or orders per device or address


_INT_BOUNDS: dict[str, tuple[int, int]] = {
    "points_earn_bp": (0, 1_000_000),
    "fen_per_point": (1, 10_000),
    "points_cap_bp": (0, 10_000),
    "points_expiry_days": (1, 3_650),
    "stock_cover_limit_days": (1, 3_650),
    "new_agent_monthly_sales": (1, 10_000_000),
    "buyback_window_days": (0, 3_650),
    "buyback_price_bp": (0, 10_000),
    "min_first_stock_order_fen": (0, 10**11),
    "velocity_limit_per_hour": (1, 10_000),
}


def _int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("setting_invalid", field=name)
    if not low <= value <= high:
        raise InvalidInput("setting_out_of_range", field=name, low=low, high=high)
    return value


def check_url_template(target_type: str, template: Any) -> str:
    """An absolute http(s) URL, at most 500 characters, that may name `{target_id}`, `{code}`
    and `{visitor}` (and nothing else in braces)."""
    name = f"share_url_templates.{target_type}"
    if not isinstance(template, str) or not 1 <= len(template) <= 500:
        raise InvalidInput("setting_invalid", field=name)
    try:
        filled = template.format(target_id="x", code="x", visitor="x")
    except (KeyError, IndexError, ValueError):
        raise InvalidInput("share_url_template_invalid", field=name) from None
    parts = urlsplit(filled)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput("share_url_template_invalid", field=name)
    return template


def validate_patch(current: GrowthSettings, patch: Mapping[str, Any]) -> dict[str, Any]:
    """The column values a patch sets, refusing anything unknown or out of range."""
    columns: dict[str, Any] = {}
    for name, value in patch.items():
        if name in _INT_BOUNDS:
            columns[name] = _int(name, value, *_INT_BOUNDS[name])
        elif name == "short_link_base":
            if value == "":
                columns[name] = ""
                continue
            if not isinstance(value, str) or len(value) > 200:
                raise InvalidInput("setting_invalid", field=name)
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
                raise InvalidInput("share_url_template_invalid", field=name)
            columns[name] = value.rstrip("/")
        elif name == "share_url_templates":
            if not isinstance(value, dict):
                raise InvalidInput("setting_invalid", field=name)
            merged = dict(current.share_url_templates)
            for target_type, template in value.items():
                if target_type not in TARGET_TYPES:
                    raise InvalidInput("setting_unknown", field=f"{name}.{target_type}")
                if template is None:
                    merged.pop(target_type, None)
                else:
                    merged[target_type] = check_url_template(target_type, template)
            columns[name] = merged
        elif name == "points_rules":
            if not isinstance(value, dict):
                raise InvalidInput("setting_invalid", field=name)
            rules = dict(current.points_rules)
            for rule, points in value.items():
                if not isinstance(rule, str) or not 1 <= len(rule) <= 40:
                    raise InvalidInput("points_rule_invalid", rule=str(rule)[:40])
                if points is None:
                    rules.pop(rule, None)
                else:
                    rules[rule] = _int(f"{name}.{rule}", points, 1, 1_000_000)
            if len(rules) > MAX_RULES:
                raise InvalidInput("points_rules_too_many", max=MAX_RULES)
            columns[name] = rules
        else:
            raise InvalidInput("setting_unknown", field=name)
    return columns


def share_url(
    settings: GrowthSettings,
    *,
    target_type: str,
    target_id: str | None,
    code: str,
    visitor: str = "",
) -> str:
    """Where a share link of this target leads, or "" if the tenant has not said."""
    template = settings.share_url_templates.get(target_type)
    if template is None:
        return ""
    return template.format(
        target_id=quote(target_id or "", safe=""),
        code=quote(code, safe=""),
        visitor=quote(visitor, safe=""),
    )
