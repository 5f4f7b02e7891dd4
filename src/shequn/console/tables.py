from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    text,
)

from shequn.db import Id, UTCDateTime, metadata
from shequn.distribution.tables import commission_lines

console_users = Table(
    "console_users",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    # One login names one person across the deployment, so the login form needs no tenant.
    Column("login", String(80), nullable=False),
    Column("display_name", String(80), nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("locale", String(8), nullable=True),  # null: the browser's language
    Column("failed_logins", Integer, nullable=False, default=0, server_default=text("0")),
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("last_login_at", UTCDateTime(), nullable=True),
    Column("disabled_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("login"),
    CheckConstraint("role IN ('owner', 'operator', 'staff', 'readonly')", name="role"),
)

# Console and portal sessions: the cookie holds a random token, the row only its hash.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("principal_id", Id, nullable=False),  # a console user, or a member on the portal
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("token_hash"),
    Index(None, "tenant_id", "principal_id"),
    CheckConstraint("kind IN ('console', 'portal')", name="kind"),
)

login_attempts = Table(
    "login_attempts",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("kind", String(16), nullable=False),  # console | portal_password | portal_code
    Column("principal_id", Id, nullable=False),
    Column("succeeded", Boolean, nullable=False),
    Column("remote", String(64), nullable=True),
    Column("at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "principal_id", "at"),
)

portal_credentials = Table(
    "portal_credentials",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("password_hash", String(200), nullable=True),  # null: codes only
    Column("failed_logins", Integer, nullable=False, default=0, server_default=text("0")),
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("last_login_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "member_id"),
)

portal_codes = Table(
    "portal_codes",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("attempts", Integer, nullable=False, default=0, server_default=text("0")),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "member_id", "created_at"),
)

# The console and the portal read a member's commission lines newest first (the member 360,
# the portal's home and commissions): by this index a page is a short range scan however many
# lines the member has.
Index(None, commission_lines.c.tenant_id, commission_lines.c.beneficiary_id, commission_lines.c.id)
