"""The shapes the API answers with that several route modules share (the error every refused
request gets, a compliance finding, a page of a keyset-paged list, a commission line), and the
way a route module declares in the OpenAPI document a limit its use case checks itself.

Every answer model forbids fields it does not name: a plain route's answer is validated
against its model, so a use case and its model cannot drift apart unseen.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

from shequn.compliance.rules import Severity


class Shape(BaseModel):
    """An answer exactly as a use case returns it: no field more, none less."""

    model_config = ConfigDict(extra="forbid")


# Any JSON value: what an event's payload holds, which depends on the event's type.
JsonData = TypeAliasType(
    "JsonData",
    "str | int | float | bool | list[JsonData] | dict[str, JsonData] | None",
)


def limits(*, nullable: bool = True, **declared: Any) -> Callable[[dict[str, Any]], None]:
    """A `json_schema_extra` for a body field whose limits the use case checks itself, with its
    own error code (`amount_invalid`, `rate_invalid`, …): the document states the limits, and
    a value beyond them still gets the use case's answer. The limits go on the field's type
    (beside `null` when the field may be null). Not `nullable`: a field that may be left out
    but that the use case refuses as null (422 `field_required`)."""

    def declare(schema: dict[str, Any]) -> None:
        kinds = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
        for kind in kinds or [schema]:
            kind.update(declared)
        if not nullable and len(kinds) == 1:
            del schema["anyOf"]
            schema.update(kinds[0])
            schema.pop("default", None)

    return declare


def text_limits(max_length: int) -> dict[str, Any]:
    """The limits of a text the use case trims (or whose spaces it collapses) before it checks
    its length: stated for the text as sent without surrounding spaces (some text, at most
    `max_length` characters)."""
    return {"minLength": 1, "maxLength": max_length, "pattern": r"\S"}


IDEMPOTENCY_KEY = text_limits(80)
IDEMPOTENCY_KEY_TEXT = (
    "Sent again with the same request, it answers what the first request made instead of "
    "doing it twice (`Idempotent-Replayed: true`); with another request, 409 "
    "`idempotency_key_reused`. Trimmed; 1 to 80 characters."
)


def cursor(prefix: str) -> dict[str, Any]:
    """The `json_schema_extra` of an `after` parameter: an id of the listed kind."""
    return {"pattern": f"^{prefix}_[0-9a-hjkmnp-tv-z]{{26}}$"}


def page_limit(high: int = 500) -> dict[str, Any]:
    """The `json_schema_extra` of a `limit` parameter the use case checks itself
    (`limit_out_of_range`)."""
    return {"minimum": 1, "maximum": high}


def replay_responses(model: type[BaseModel], what: str) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route that answers a repeated request with what the first made."""
    return {
        200: {
            "model": model,
            "description": f"A request repeated with its idempotency key: the {what} the first "
            "made (`Idempotent-Replayed: true`).",
        }
    }


# --- errors --------------------------------------------------------------------------------


class FieldErrorOut(Shape):
    """One rule a request broke."""

    loc: list[str] = Field(
        description="Where: `body`, `query`, `path` or `header`, then the field's path "
        "(list positions as numbers)."
    )
    type: str = Field(
        description="The rule, by its machine name (`missing`, `extra_forbidden`, "
        "`string_too_long`, `less_than_equal`, …)."
    )
    message: str = Field(description="The rule and the field, in the request's language.")


class FindingOut(Shape):
    """A compliance rule a commission plan breaks or comes close to."""

    rule: str = Field(
        description="The rule (`commission_depth`, `total_commission`, `three_levels`, "
        "`recruitment_reward`, `entry_fee`, `headcount_upgrade`, `team_volume`, "
        "`unsettled_commission`, `live_depth`, `prosecution_threshold`)."
    )
    severity: Severity = Field(
        description="`block`: the plan cannot be activated; `warn`: it may, with care."
    )
    message: str = Field(description="What the finding says, in the request's language.")
    citation: str = Field(description="The law or platform rule it rests on.")
    params: dict[str, int | str] = Field(
        description="The figures the message names (amounts in fen, rates in bp)."
    )


class ImportRowErrorOut(Shape):
    """Why one row of an imported file cannot be imported."""

    line: int = Field(description="The line of the file (its header is line 1).")
    field: str | None = Field(
        default=None, description="The column, when the reason is about one; absent otherwise."
    )
    code: str = Field(
        description="Stable machine code (`phone_invalid`, `referrer_unknown`, `sku_unknown`, …)."
    )
    message: str = Field(description="The reason, in the language of `Accept-Language`.")


class ImportReportOut(Shape):
    """What a CSV import found and did: every bad row, and the rows it would write or wrote."""

    kind: Literal["members", "orders", "referrals"] = Field(description="What the file holds.")
    dry_run: bool = Field(description="Only checked: nothing was imported.")
    rows: int = Field(description="Rows of the file, its header and blank lines left out.")
    valid: int = Field(description="Rows without an error.")
    errors: list[ImportRowErrorOut] = Field(
        description="Every bad row's every reason, by line. A file with one imports nothing."
    )
    planned: dict[str, int] = Field(
        description="What the file would import: members `created`, `matched`, `bound`; "
        "orders `created`, `lines`, `matched`; referrals `bound`, `matched`."
    )
    imported: dict[str, int] = Field(
        description="What was imported, with the keys of `planned` (all 0 for a dry run or "
        "a file with a bad row)."
    )


class ErrorOut(Shape):
    """Every refused request: a stable machine code and a message for a person."""

    code: str = Field(
        description="Stable machine code: `validation_error` for a request that breaks the "
        "document's rules, otherwise the use case's own (`amount_invalid`, "
        "`order_not_found`, `permission_denied`, `database_busy`, …)."
    )
    message: str = Field(description="The reason, in the language of `Accept-Language`.")
    errors: list[FieldErrorOut] = Field(
        default_factory=list,
        description="With `validation_error` only: every rule the request broke.",
    )
    findings: list[FindingOut] = Field(
        default_factory=list,
        description="With `plan_blocked` and `settings_break_active_plan` only: the "
        "compliance findings that refused the change.",
    )
    report: ImportReportOut | None = Field(
        default=None,
        description="With `import_rows_invalid` only: the import's report, with every bad row.",
    )


# The statuses every operation under the API may refuse a request with, and when.
ERROR_STATUSES: dict[str, str] = {
    "400": "Bad request: a NUL character in the path or the query, or a body that is no "
    "UTF-8 text (`bad_request`).",
    "401": "No API key, or one that is unknown or revoked (`api_key_missing`, `api_key_invalid`).",
    "403": "The key's role may not do this (`permission_denied`).",
    "404": "Something the request names does not exist in the tenant.",
    "409": "The current state refuses the request (a state machine, an idempotency key "
    "used for another request, a compliance block).",
    "413": "The body is over 1 MiB (`body_too_large`).",
    "422": "The request breaks a rule: of this document (`validation_error`, with `errors`) "
    "or of the use case (its own code).",
    "503": "The database kept giving up the transaction (`database_busy`): retry after the "
    "`Retry-After` seconds.",
}


# --- lists ---------------------------------------------------------------------------------

Item = TypeVar("Item", bound=BaseModel)


class Page(Shape, Generic[Item]):
    """A page of a list read in id order (oldest first)."""

    items: list[Item]
    next_after: str | None = Field(
        description="Pass it as `after` to read the next page; null on the last page."
    )


# --- commission lines ----------------------------------------------------------------------

CommissionStatus = Literal["pending", "available", "withdrawn", "cancelled", "reversed"]
CommissionKind = Literal["level", "differential", "peer_bonus", "own_sale"]


class CommissionLineOut(Shape):
    """What one order line pays one member under the plan at the time of the sale."""

    id: str
    order_id: str
    order_line_id: str
    plan_id: str = Field(
        description="The plan version that paid it (`cloud_stock` for an "
        "agent's own-sale proceeds)."
    )
    level: int = Field(description="1: the member who made the sale; 2 and 3: its referrers.")
    kind: CommissionKind
    rate_bp: int = Field(description="The rate applied, in basis points (10000 = 100 %).")
    base_fen: int = Field(description="What the buyer paid for the line, in fen.")
    amount_fen: int = Field(description="The commission as accrued, in fen.")
    cancelled_fen: int = Field(description="Cancelled by a refund before release, in fen.")
    reversed_fen: int = Field(description="Taken back by a refund after release, in fen.")
    withdrawn_fen: int = Field(description="Drawn on by withdrawals, in fen.")
    net_fen: int = Field(description="`amount_fen` less what was cancelled and reversed.")
    status: CommissionStatus = Field(
        description="`pending` until the order closes, then `available`; `withdrawn` once "
        "drawn on in full; `cancelled` or `reversed` by refunds."
    )
    created_at: datetime
    released_at: datetime | None


class OrderCommissionOut(CommissionLineOut):
    """A commission line of an order, with the member it pays."""

    beneficiary_id: str
