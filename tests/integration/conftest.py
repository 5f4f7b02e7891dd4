"""Fixtures of the integration tests that race use cases on PostgreSQL."""

from __future__ import annotations

import pytest

from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.tenancy.service import create_tenant


@pytest.fixture
def pg_ctx(postgres_db: Database) -> Ctx:
    """A fresh tenant on the PostgreSQL database, with a clock of its own."""
    clock = ManualClock()
    tenant_id, _ = create_tenant(db=postgres_db, clock=clock, name="race")
    return Ctx(db=postgres_db, clock=clock, tenant_id=tenant_id, actor="race")
