"""Who is acting, for which tenant, against which database, clock and snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from shequn.clock import Clock
from shequn.db import Database
from shequn.snapshot import Snapshot


@dataclass(frozen=True)
class Ctx:
    db: Database
    clock: Clock
    tenant_id: str
    actor: str  # "key:<id>", "cli", "system", "demo"
    snapshot: Snapshot = field(default_factory=Snapshot)

    def as_actor(self, actor: str) -> Ctx:
        return replace(self, actor=actor)
