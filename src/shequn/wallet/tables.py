from sqlalchemy import (
    CheckConstraint,
    Column,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from shequn.db import Fen, Id, UTCDateTime, metadata

withdrawals = Table(
    "withdrawals",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("amount_fen", Fen, nullable=False),
    Column("fee_fen", Fen, nullable=False),
    Column("net_fen", Fen, nullable=False),
    Column("status", String(16), nullable=False),
    # Sent to the payout provider on every attempt, so a retried payout is never paid twice.
    Column("payout_id", Id, nullable=False),
    Column("idempotency_key", String(80), nullable=True),
    Column("provider_ref", String(120), nullable=True),
    Column("reason", String(500), nullable=True),
    Column("decided_by", String(80), nullable=True),
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("approved_at", UTCDateTime(), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "payout_id"),
    UniqueConstraint("tenant_id", "member_id", "idempotency_key"),
    Index(None, "tenant_id", "member_id", "requested_at"),
    Index(None, "tenant_id", "status", "requested_at"),
    CheckConstraint("amount_fen > 0 AND fee_fen >= 0 AND net_fen > 0", name="amounts"),
    CheckConstraint(
        "status IN ('requested', 'approved', 'paid', 'rejected', 'failed')", name="status"
    ),
)
