from sqlalchemy import (
    CheckConstraint,
    Column,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from shequn.db import Fen, Id, JsonType, UTCDateTime, metadata

# What a shop saw of a member at a registration, an order or a login: fingerprints only.
identity_signals = Table(
    "identity_signals",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("kind", String(16), nullable=False),  # registration | order | login
    Column("phone_print", String(40), nullable=True),
    Column("device_print", String(40), nullable=True),
    Column("address_print", String(40), nullable=True),
    Column("payment_print", String(40), nullable=True),
    Column("seen_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "member_id"),
    Index(None, "tenant_id", "phone_print"),
    Index(None, "tenant_id", "device_print", "seen_at"),
    Index(None, "tenant_id", "address_print", "seen_at"),
    Index(None, "tenant_id", "payment_print"),
    CheckConstraint("kind IN ('registration', 'order', 'login')", name="kind"),
)

# A commission line or a reward held back, waiting for an operator.
holds = Table(
    "holds",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("kind", String(16), nullable=False),  # commission | reward
    Column("subject_id", Id, nullable=False),  # the commission line or the reward
    Column("member_id", Id, nullable=False),  # who would be paid
    Column("buyer_id", Id, nullable=False),
    Column("order_id", Id, nullable=False),
    Column("amount_fen", Fen, nullable=False),
    Column("points", Fen, nullable=False),
    Column("reasons", JsonType, nullable=False),
    Column("status", String(16), nullable=False),
    Column("decided_by", String(80), nullable=True),
    Column("decision_reason", String(500), nullable=True),
    Column("released_fen", Fen, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("decided_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "kind", "subject_id"),
    Index(None, "tenant_id", "status", "created_at"),
    Index(None, "tenant_id", "member_id"),
    CheckConstraint("status IN ('held', 'released', 'cancelled')", name="status"),
    CheckConstraint("kind IN ('commission', 'reward')", name="kind"),
)
