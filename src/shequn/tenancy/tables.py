from sqlalchemy import (
    CheckConstraint,
    Column,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    text,
)

from shequn.db import Fen, Id, JsonType, UTCDateTime, metadata

tenants = Table(
    "tenants",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("name", String(120), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("name", String(80), nullable=False),
    Column("role", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("key_prefix", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("key_hash"),
    CheckConstraint("role IN ('owner', 'operator', 'readonly')", name="role"),
)

tenant_settings = Table(
    "tenant_settings",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("currency", String(3), nullable=False, default="CNY"),
    Column("locale", String(8), nullable=False, default="zh_CN"),
    Column("after_sales_days", Integer, nullable=False, default=7),
    Column("auto_complete_days", Integer, nullable=False, default=10),
    Column("compliance_profile", String(16), nullable=False, default="wechat"),
    Column("custom_commission_cap_bp", Integer, nullable=False, default=3000),
    Column("binding_mode", String(16), nullable=False, default="first_touch"),
    Column("binding_window_days", Integer, nullable=False, default=30),
    Column("binding_trigger", String(24), nullable=False, default="registration"),
    Column("binding_protection_days", Integer, nullable=False, default=0),
    Column("withdrawal_min_fen", Fen, nullable=False, default=100),
    Column("withdrawal_fee_bp", Integer, nullable=False, default=0),
    Column("withdrawal_auto_approve_max_fen", Fen, nullable=False, default=50_000),
    # Beyond these per member and day, withdrawals wait for an operator's approval.
    Column(
        "withdrawal_daily_count_max", Integer, nullable=False, default=3, server_default=text("3")
    ),
    Column(
        "withdrawal_daily_amount_max_fen",
        Fen,
        nullable=False,
        default=500_000,
        server_default=text("500000"),
    ),
    # An order unpaid this long is cancelled by the sweep.
    Column("unpaid_cancel_minutes", Integer, nullable=False, default=30, server_default=text("30")),
    # The tenant's days and months (settlement cut-offs, daily limits, reports) are local here.
    Column(
        "time_zone",
        String(64),
        nullable=False,
        default="Asia/Shanghai",
        server_default=text("'Asia/Shanghai'"),
    ),
    Column("stage_criteria", JsonType, nullable=False),
    Column("active_plan_id", Id, nullable=True),
    # Moved by the database on every tier change, so that a copy of the tier list is known stale.
    Column("tiers_version", Integer, nullable=False, default=0),
    # Moved by the database on every change of the row (tiers included), so that a process can
    # tell whether the settings it read earlier are still current.
    Column("version", Integer, nullable=False, default=0, server_default=text("0")),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id"),
)
