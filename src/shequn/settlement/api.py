from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from shequn.settlement.service import run_settlement
from shequn.web import Writer

router = APIRouter(tags=["settlement"])


@router.post("/settlement/run")
def run(ctx: Writer) -> dict[str, Any]:
    return run_settlement(ctx)
