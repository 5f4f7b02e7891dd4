"""webhook endpoints and their delivery outbox

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

Endpoints a tenant registers (the signing secret is derived from the deployment's key and a
salt kept here), the event types each one receives, the deliveries the events write in the same
statement as themselves, and every attempt to send one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shequn.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("secret_salt", sa.String(length=64), nullable=False),
        sa.Column("previous_secret_salt", sa.String(length=64), nullable=True),
        sa.Column(
            "previous_secret_expires_at", shequn.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "event_type", "endpoint_id", name=op.f("pk_webhook_subscriptions")
        ),
    )
    op.create_index(
        op.f("ix_webhook_subscriptions_tenant_id_endpoint_id"),
        "webhook_subscriptions",
        ["tenant_id", "endpoint_id"],
        unique=False,
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("claimed_by", sa.String(length=40), nullable=True),
        sa.Column("claimed_until", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'dead', 'skipped')",
            name=op.f("ck_webhook_deliveries_status"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "tenant_id",
            "endpoint_id",
            "event_id",
            name=op.f("uq_webhook_deliveries_tenant_id_endpoint_id_event_id"),
        ),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_status_next_attempt_at"),
        "webhook_deliveries",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_index(
        "ix_webhook_deliveries_subject_order",
        "webhook_deliveries",
        ["tenant_id", "endpoint_id", "subject_type", "subject_id", "event_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_webhook_deliveries_tenant_id_endpoint_id_id"),
        "webhook_deliveries",
        ["tenant_id", "endpoint_id", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_webhook_deliveries_tenant_id_status_id"),
        "webhook_deliveries",
        ["tenant_id", "status", "id"],
        unique=False,
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "delivery_id", "attempt", name=op.f("pk_webhook_attempts")
        ),
    )


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_index("ix_webhook_deliveries_tenant_id_status_id", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_tenant_id_endpoint_id_id", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_subject_order", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_status_next_attempt_at", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index(
        "ix_webhook_subscriptions_tenant_id_endpoint_id", table_name="webhook_subscriptions"
    )
    op.drop_table("webhook_subscriptions")
    op.drop_table("webhook_endpoints")
