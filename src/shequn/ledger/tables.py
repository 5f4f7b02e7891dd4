from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from shequn.db import Fen, Id, UTCDateTime, metadata

accounts = Table(
    "accounts",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", String(48), nullable=False),
    Column("owner_type", String(16), nullable=False),
    Column("owner_id", Id, nullable=False),
    Column("purpose", String(24), nullable=False),
    Column("currency", String(40), nullable=False),
    # Cached sum of postings, kept only where a guard needs it (member accounts); brand and
    # system accounts would be hot rows, so their balance is always summed from postings.
    Column("tracks_balance", Boolean, nullable=False),
    Column("balance", Fen, nullable=False, default=0),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "owner_type", "owner_id", "purpose", "currency"),
    # The last line of defence: a wallet never goes below zero (a shortfall is debt instead).
    CheckConstraint(
        "(purpose NOT IN ('wallet_available', 'wallet_pending', 'points', 'stock')"
        " OR balance >= 0)"
        " AND (purpose <> 'debt' OR balance <= 0)",
        name="balance_sign",
    ),
)

journal_transactions = Table(
    "journal_transactions",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("ref_type", String(24), nullable=False),
    Column("ref_id", Id, nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "ref_type", "ref_id"),
)

postings = Table(
    "postings",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("transaction_id", Id, nullable=False),
    Column("account_id", String(48), nullable=False),
    Column("currency", String(40), nullable=False),
    Column("amount", Fen, nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "account_id"),
    Index(None, "tenant_id", "transaction_id"),
    CheckConstraint("amount <> 0", name="nonzero"),
)
