from sqlalchemy import Column, PrimaryKeyConstraint, String, Table

from shequn.db import Id, UTCDateTime, metadata

# Every growth table, so that importing this module completes the shared metadata.
from shequn.growth.coupons import tables as _coupons  # noqa: F401
from shequn.growth.holds import tables as _holds  # noqa: F401
from shequn.growth.links import tables as _links  # noqa: F401
from shequn.growth.points import tables as _points  # noqa: F401
from shequn.growth.settings import tables as _settings  # noqa: F401
from shequn.growth.sharing import tables as _sharing  # noqa: F401
from shequn.growth.stock import tables as _stock  # noqa: F401

# How far the growth sweep has read the tenant's order events: every event before
# `after_event_id` is processed (later ones are told apart by the markers below).
growth_cursors = Table(
    "growth_cursors",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("after_event_id", String(40), nullable=False),
    PrimaryKeyConstraint("tenant_id"),
)

# The events after the cursor that the sweep has processed (an event recorded by a
# transaction that committed late may sort before one processed already).
growth_processed = Table(
    "growth_processed",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("event_id", Id, nullable=False),
    Column("processed_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "event_id"),
)
