"""Cadence settings, SOPs, scheduled posts, the members' monthly message budgets and the
copy library (文案库) with its segmented text for full-text search."""

from sqlalchemy import Column, Index, Integer, PrimaryKeyConstraint, String, Table

from shequn.db import Id, JsonType, UTCDateTime, metadata

cadence_settings = Table(
    "cadence_settings",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("posts_per_day", Integer, nullable=False),
    Column("min_gap_minutes", Integer, nullable=False),
    Column("quiet_start", Integer, nullable=False),  # minutes of the local day
    Column("quiet_end", Integer, nullable=False),
    Column("monthly_budget", Integer, nullable=False),  # messages per member per month
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id"),
)

sops = Table(
    "sops",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("name", String(80), nullable=False),
    Column("target_kind", String(16), nullable=False),  # staff_account, group, segment
    Column("target_id", String(80), nullable=False),
    Column("steps", JsonType, nullable=False),
    Column("starts_on", String(10), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
)

scheduled_posts = Table(
    "scheduled_posts",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("sop_id", Id, nullable=True),
    Column("target_kind", String(16), nullable=False),
    Column("target_id", String(80), nullable=False),
    Column("kind", String(8), nullable=False),  # post, task
    Column("body", String(4000), nullable=False),
    Column("send_at", UTCDateTime(), nullable=False),
    Column("recipients", Integer, nullable=False),
    Column("status", String(12), nullable=False),  # scheduled, queued
    Column("queued_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "status", "send_at"),
    Index(None, "tenant_id", "target_kind", "target_id", "send_at"),
)

message_budgets = Table(
    "message_budgets",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("month", String(7), nullable=False),  # YYYY-MM, local
    Column("used", Integer, nullable=False),
    PrimaryKeyConstraint("tenant_id", "member_id", "month"),
)

copy_entries = Table(
    "copy_entries",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("title", String(120), nullable=False),
    Column("body", String(4000), nullable=False),
    Column("tags", JsonType, nullable=False),
    Column("tokens", String(8000), nullable=False),  # jieba's words, space separated
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
)
