"""The tenant's growth-path stages and each member's stage."""

from sqlalchemy import Column, Index, Integer, PrimaryKeyConstraint, String, Table

from shequn.db import Id, JsonType, UTCDateTime, metadata

growth_stages = Table(
    "growth_stages",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("position", Integer, nullable=False),  # 1 is the first stage
    Column("name", String(40), nullable=False),
    Column("criteria", JsonType, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "position"),
)

member_growth = Table(
    "member_growth",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("position", Integer, nullable=False),
    Column("stage", String(40), nullable=False),
    Column("entered_at", UTCDateTime(), nullable=False),
    Column("evaluated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "member_id"),
    Index(None, "tenant_id", "position"),
)

# The growth-path follower's place in a tenant's event feed: every event up to
# `after_event_id` has been followed; `sweep_after` is the member id a re-reading of every
# member goes on from (after the path changed or a bulk import), none when there is none.
growth_path_cursors = Table(
    "growth_path_cursors",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("after_event_id", Id, nullable=False),
    Column("sweep_after", Id, nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id"),
)

# Events past the cursor already followed: one committed late (with an older id) is still
# found, and none is followed twice. Pruned as the cursor passes them.
growth_path_followed = Table(
    "growth_path_followed",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("event_id", Id, nullable=False),
    Column("followed_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "event_id"),
)
