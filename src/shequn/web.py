"""Shared pieces of the HTTP layer: app state, authentication, permissions, error bodies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, model_validator

from shequn.clock import Clock
from shequn.config import Settings
from shequn.context import Ctx
from shequn.db import Database
from shequn.errors import Forbidden, Unauthorized
from shequn.tenancy.rules import Permission, Principal
from shequn.tenancy.service import authenticate, cached_principal


@dataclass
class AppState:
    settings: Settings
    db: Database
    clock: Clock


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class Body(BaseModel):
    """Request bodies refuse unknown fields and coerce nothing (a float is not a fen)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        # PostgreSQL cannot store NUL in text; refuse it at the door on every backend.
        if _has_nul(data):
            raise ValueError("text must not contain NUL characters")
        return data


_bearer = HTTPBearer(auto_error=False)


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.shequn
    return state


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Resolve the API key; a key seen moments ago costs neither a thread hop nor a query."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("api_key_missing")
    state = app_state(request)
    cached = cached_principal(credentials.credentials)
    if cached is not None:
        return cached
    return await run_in_threadpool(
        authenticate,
        db=state.db,
        raw_key=credentials.credentials,
        cache_seconds=state.settings.api_key_cache_seconds,
    )


def requires(permission: Permission) -> Callable[..., Any]:
    async def dependency(request: Request, who: Annotated[Principal, Depends(principal)]) -> Ctx:
        if not who.can(permission):
            raise Forbidden("permission_denied", permission=permission.value, role=who.role.value)
        state = app_state(request)
        return Ctx(db=state.db, clock=state.clock, tenant_id=who.tenant_id, actor=who.actor)

    return dependency


Reader = Annotated[Ctx, Depends(requires(Permission.READ))]
Writer = Annotated[Ctx, Depends(requires(Permission.WRITE))]
Admin = Annotated[Ctx, Depends(requires(Permission.ADMIN))]


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, **extra}
