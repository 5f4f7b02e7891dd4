"""Imports and exports over HTTP: a CSV file in (`POST /imports/{kind}`, the file as the body),
a CSV or Parquet file out (`GET /exports/{kind}`, streamed).

An import needs an operator or owner key (it makes members, ties and orders an operator may
make one at a time; it never moves a tie); an export needs any key (it shows what the read
routes show). A request body is at most 1 MiB, as for every route: a larger file goes through
`shequn import` on the command line, or in parts.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from shequn.entrypoints.api.http import (
    API_PREFIX,
    Reader,
    Writer,
    blocking,
    error_body,
    run_use_case,
)
from shequn.entrypoints.api.shapes import ERROR_STATUSES, ImportReportOut
from shequn.errors import DomainError
from shequn.i18n import translate
from shequn.transfer.exports import prepare_export
from shequn.transfer.imports import import_file
from shequn.transfer.report import report_shown

router = APIRouter(prefix=API_PREFIX, tags=["transfer"])

ImportKind = Literal["members", "orders", "referrals"]
ExportKind = Literal["members", "orders", "commissions", "ledger"]
ExportFormat = Literal["csv", "parquet"]
CSV_TYPES = frozenset({"text/csv", "application/csv"})
ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}


class UnsupportedMediaType(DomainError):
    status = 415


_IMPORT_DOCS: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The CSV file itself (UTF-8, with or without a byte-order mark; at most "
        "1 MiB), its first line the header. The columns are in docs/import-export.md.",
        "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
    }
}
_IMPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The report: the file was imported, or, with `dry_run`, checked."},
    415: {
        "description": "The body is not sent as `Content-Type: text/csv` "
        "(`import_media_type_invalid`).",
        "content": ERROR_JSON,
    },
    422: {
        "description": f"{ERROR_STATUSES['422']} A file with a bad row imports nothing: "
        "`import_rows_invalid`, with the whole report in `report` (every bad row with its line "
        "and reason).",
        "content": ERROR_JSON,
    },
}
_EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file, streamed, as an attachment (`Content-Disposition`).",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    },
}


@router.post(
    "/imports/{kind}",
    openapi_extra=_IMPORT_DOCS,
    response_model=ImportReportOut,
    response_model_exclude_none=True,
    responses=_IMPORT_RESPONSES,
)
async def import_csv(
    request: Request,
    ctx: Writer,
    kind: ImportKind = Path(
        description="What the file holds: `members`, `orders` (historical orders, one line a "
        "row) or `referrals` (ties between members the tenant has)."
    ),
    dry_run: bool = Query(
        default=False,
        description="Only check the file and report every bad row; import nothing.",
    ),
) -> dict[str, Any] | JSONResponse:
    """Import a CSV file of members, orders or referral ties

    Checks every row and, unless `dry_run` or a row is bad, imports the file in one
    transaction. Importing is idempotent on external ids: a row whose member or order the
    tenant has already is matched, not made again. Members are bound with the source
    `import`. A file with a bad row imports nothing: a dry run answers 200 with the report, an
    import 422 `import_rows_invalid` with the report in `report`."""
    content_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if content_type not in CSV_TYPES:
        raise UnsupportedMediaType("import_media_type_invalid")
    data = await request.body()
    report = report_shown(
        await run_use_case(ctx.db, import_file, ctx, kind=kind, data=data, dry_run=dry_run)
    )
    if report["errors"] and not dry_run:
        bad, rows = report["rows"] - report["valid"], report["rows"]
        return JSONResponse(
            error_body(
                "import_rows_invalid",
                translate("error.import_rows_invalid", bad=bad, rows=rows),
                report=report,
            ),
            status_code=422,
        )
    return report


@router.get("/exports/{kind}", response_class=StreamingResponse, responses=_EXPORT_RESPONSES)
@blocking
def export_file(
    ctx: Reader,
    kind: ExportKind = Path(
        description="`members`, `orders` (one order line a row), `commissions` (commission "
        "lines) or `ledger` (postings with their transactions)."
    ),
    format: ExportFormat = Query(
        default="csv", description="`csv` (UTF-8) or `parquet` (typed columns)."
    ),
    start: str | None = Query(
        default=None,
        alias="from",
        max_length=40,
        description="From this date (the whole day, in the tenant's time zone) or time "
        "(ISO 8601, with an offset or in the tenant's time zone), included; else 422 "
        "`export_date_invalid`.",
    ),
    end: str | None = Query(
        default=None,
        alias="to",
        max_length=40,
        description="Up to this date (the whole day included) or time (excluded), as `from`.",
    ),
    excel: bool = Query(
        default=False,
        description="Start a CSV with a byte-order mark, so that Excel reads it as UTF-8.",
    ),
) -> StreamingResponse:
    """Download members, orders, commissions or the ledger

    As CSV or Parquet, streamed, within an optional date range (members by registration,
    orders by creation, commissions by accrual, postings by when they occurred). Times are in
    the tenant's time zone; amounts are integer fen. Members and orders come out in the
    columns their import reads."""
    export = prepare_export(ctx, kind=kind, format=format, start=start, end=end, excel=excel)
    return StreamingResponse(
        export.chunks(),
        media_type=export.media_type,
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )
