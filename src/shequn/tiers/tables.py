from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    text,
)

from shequn.db import Id, JsonType, UTCDateTime, metadata

tiers = Table(
    "tiers",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("name", String(40), nullable=False),
    Column("rank", Integer, nullable=False),  # higher is more senior
    # Privileges.
    Column("discount_bp", Integer, nullable=False, default=0),  # member-price discount
    Column("may_distribute", Boolean, nullable=False, default=False),
    Column(
        "points_multiplier_bp",
        Integer,
        nullable=False,
        default=10_000,
        server_default=text("10000"),
    ),
    Column("service_tags", JsonType, nullable=False, server_default=text("'[]'")),  # labels
    # How the tier is reached (a criteria tree, `shequn.tiers.rules`; null: by hand only) and
    # kept (`never` demoted, or `windowed`: re-checked within a buffer after a hold period).
    Column("criteria", JsonType, nullable=True),
    Column("demotion_mode", String(16), nullable=False, default="never", server_default="never"),
    Column(
        "demotion_buffer_bp", Integer, nullable=False, default=9_000, server_default=text("9000")
    ),
    Column("demotion_hold_days", Integer, nullable=False, default=0, server_default=text("0")),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "rank"),
    UniqueConstraint("tenant_id", "name"),
    CheckConstraint("discount_bp >= 0 AND discount_bp <= 10000", name="discount"),
    CheckConstraint(
        "points_multiplier_bp >= 0 AND points_multiplier_bp <= 100000", name="points_multiplier"
    ),
    CheckConstraint("demotion_mode IN ('never', 'windowed')", name="demotion_mode"),
    CheckConstraint(
        "demotion_buffer_bp >= 5000 AND demotion_buffer_bp <= 10000", name="demotion_buffer"
    ),
    CheckConstraint("demotion_hold_days >= 0", name="demotion_hold"),
)
