"""console users and sessions, portal logins

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

People who log in to a tenant's console (argon2 password hashes, a lock after repeated
failures), the sessions of the console and the portal (only a hash of each cookie's token), every
login attempt, and the portal's passwords and one-time codes of members.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shequn.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("login", sa.String(length=80), nullable=False),
        sa.Column("display_name", sa.String(length=80), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=True),
        sa.Column("failed_logins", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("locked_until", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('owner', 'operator', 'staff', 'readonly')",
            name=op.f("ck_console_users_role"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_console_users")),
        sa.UniqueConstraint("login", name=op.f("uq_console_users_login")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("principal_id", sa.String(length=40), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('console', 'portal')", name=op.f("ck_console_sessions_kind")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_console_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_sessions_token_hash")),
    )
    op.create_index(
        op.f("ix_console_sessions_tenant_id_principal_id"),
        "console_sessions",
        ["tenant_id", "principal_id"],
        unique=False,
    )
    op.create_table(
        "login_attempts",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("principal_id", sa.String(length=40), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("remote", sa.String(length=64), nullable=True),
        sa.Column("at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_login_attempts")),
    )
    op.create_index(
        op.f("ix_login_attempts_tenant_id_principal_id_at"),
        "login_attempts",
        ["tenant_id", "principal_id", "at"],
        unique=False,
    )
    op.create_table(
        "portal_credentials",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("failed_logins", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("locked_until", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "member_id", name=op.f("pk_portal_credentials")),
    )
    op.create_table(
        "portal_codes",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_portal_codes")),
    )
    op.create_index(
        op.f("ix_portal_codes_tenant_id_member_id_created_at"),
        "portal_codes",
        ["tenant_id", "member_id", "created_at"],
        unique=False,
    )
    # A member's commission lines newest first (the member 360, the portal).
    op.create_index(
        op.f("ix_commission_lines_tenant_id_beneficiary_id_id"),
        "commission_lines",
        ["tenant_id", "beneficiary_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_commission_lines_tenant_id_beneficiary_id_id"), table_name="commission_lines"
    )
    op.drop_index(op.f("ix_portal_codes_tenant_id_member_id_created_at"), table_name="portal_codes")
    op.drop_table("portal_codes")
    op.drop_table("portal_credentials")
    op.drop_index(op.f("ix_login_attempts_tenant_id_principal_id_at"), table_name="login_attempts")
    op.drop_table("login_attempts")
    op.drop_index(op.f("ix_console_sessions_tenant_id_principal_id"), table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("console_users")
