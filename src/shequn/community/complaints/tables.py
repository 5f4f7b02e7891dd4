"""Complaint tickets."""

from sqlalchemy import Column, Index, PrimaryKeyConstraint, String, Table

from shequn.db import Id, UTCDateTime, metadata

complaints = Table(
    "complaints",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("order_id", Id, nullable=True),
    Column("sku", String(64), nullable=True),
    Column("group_id", Id, nullable=True),
    Column("body", String(2000), nullable=False),
    Column("status", String(12), nullable=False),  # open, in_progress, resolved
    Column("owner", String(80), nullable=True),
    Column("respond_by", UTCDateTime(), nullable=False),
    Column("resolve_by", UTCDateTime(), nullable=False),
    Column("responded_at", UTCDateTime(), nullable=True),
    Column("resolved_at", UTCDateTime(), nullable=True),
    Column("resolution", String(1000), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "sku", "created_at"),
    Index(None, "tenant_id", "status"),
)
