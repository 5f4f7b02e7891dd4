from sqlalchemy import Column, Index, Integer, PrimaryKeyConstraint, String, Table

from shequn.db import Id, UTCDateTime, metadata

# Closure table: one row per (ancestor, descendant) pair, including depth 0 for each member.
referral_paths = Table(
    "referral_paths",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("ancestor_id", Id, nullable=False),
    Column("descendant_id", Id, nullable=False),
    Column("depth", Integer, nullable=False),
    PrimaryKeyConstraint("tenant_id", "ancestor_id", "descendant_id"),
    Index(None, "tenant_id", "descendant_id", "depth"),
    Index(None, "tenant_id", "ancestor_id", "depth"),
)

# A share-link click, QR scan or staff introduction that may lead to a binding.
referral_touches = Table(
    "referral_touches",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("sharer_id", Id, nullable=False),
    Column("visitor_key", String(100), nullable=False),
    Column("source", String(16), nullable=False),
    Column("scene", String(64), nullable=True),
    Column("touched_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "visitor_key", "touched_at"),
)

# Every binding change, with who did it and why: the audit trail for disputes.
referral_bindings = Table(
    "referral_bindings",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("referrer_id", Id, nullable=True),
    Column("previous_referrer_id", Id, nullable=True),
    Column("kind", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("reason", String(500), nullable=True),
    Column("actor", String(80), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "member_id", "occurred_at"),
)
