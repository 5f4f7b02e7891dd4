"""Importing a CSV file of members, orders or referral ties in the console: checked first
(every bad row with its line and field), imported only when every row is good."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from shequn.console.rules import Capability
from shequn.entrypoints.web.forms import Form
from shequn.entrypoints.web.kit import (
    Area,
    Console,
    NavItem,
    console_for,
    page,
    render,
    submitted,
)
from shequn.errors import DomainError
from shequn.transfer.imports import import_file
from shequn.transfer.report import report_shown
from shequn.transfer.rules import ImportKind

router = APIRouter(include_in_schema=False)

KINDS = tuple(k.value for k in ImportKind)
# The request as a whole stays under the app's 1 MiB body limit.
MAX_UPLOAD = 1024 * 1024


def _view(
    who: Console, *, form: Form | None = None, report: Any = None, status: int = 200
) -> Response:
    return render(
        who,
        "console/import.html",
        form=form or Form({"kind": "members", "dry_run": "on"}),
        status=status,
        report=report,
        kinds=KINDS,
    )


@router.get("/console/import")
@page
async def import_page(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    return _view(who)


@router.post("/console/import")
@page
async def import_upload(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who, max_bytes=MAX_UPLOAD)
    kind = form.choice("kind", KINDS)
    sent = await request.form()
    try:
        upload = sent.get("file")
        data = await upload.read() if isinstance(upload, UploadFile) else b""
    finally:
        await sent.close()
    if not data:
        form.fail("file", "console.import.file_required")
    if not form.ok or kind is None:
        return _view(who, form=form, status=422)
    dry_run = form.checked("dry_run")
    try:
        report = report_shown(await who.run(import_file, kind=kind, data=data, dry_run=dry_run))
    except DomainError as exc:
        form.refuse(exc, fields={"kind": "kind"})
        if "_form" in form.errors:
            form.errors["file"] = form.errors.pop("_form")
        return _view(who, form=form, status=exc.status)
    if report["errors"]:
        # The file is what is wrong: the count beside its field, each row in the report.
        form.fail("file", "console.import.refused", count=len(report["errors"]))
        return _view(who, form=form, report=report, status=422)
    return _view(who, form=form, report=report)


AREA = Area(
    name="import",
    router=router,
    console_nav=(NavItem("console.nav.import", "/console/import", Capability.OPERATE),),
)
