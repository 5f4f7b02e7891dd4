"""JSON as the database stores it, on every backend: compact, UTF-8 as is, aware datetimes in ISO
form. A leaf module: the engine factory and the batch writer both use it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any


class NaiveDatetimeError(ValueError):
    """A datetime without a time zone was given to the database (a programming error)."""


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise NaiveDatetimeError("naive datetime given to the database")
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# Built once: `json.dumps` with options builds an encoder per call, which costs more than
# encoding a row.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default)


def dumps_json(value: Any) -> str:
    """`value` as compact JSON text."""
    return _ENCODER.encode(value)
