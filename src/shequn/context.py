"""Who is acting, for which tenant, against which database and clock."""

from __future__ import annotations

from dataclasses import dataclass, replace

from shequn.clock import Clock
from shequn.db import Database


@dataclass(frozen=True)
class Ctx:
    db: Database
    clock: Clock
    tenant_id: str
    actor: str  # "key:<id>", "cli", "system", "demo"

    def as_actor(self, actor: str) -> Ctx:
        return replace(self, actor=actor)
