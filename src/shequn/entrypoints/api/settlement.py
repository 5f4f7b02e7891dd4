from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from shequn.entrypoints.api.http import API_PREFIX, Writer, blocking
from shequn.settlement.service import run_settlement

router = APIRouter(prefix=API_PREFIX, tags=["settlement"])


@router.post("/settlement/run")
@blocking
def run(ctx: Writer) -> dict[str, Any]:
    return run_settlement(ctx)
