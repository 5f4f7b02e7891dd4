from sqlalchemy import Column, PrimaryKeyConstraint, String, Table, UniqueConstraint

from shequn.db import Id, UTCDateTime, metadata

# A member's short code for one target and channel state ("" where there is none, so that the
# same request finds the same code).
share_links = Table(
    "share_links",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("code", String(16), nullable=False),
    Column("member_id", Id, nullable=False),
    Column("target_type", String(16), nullable=False),
    Column("target_id", String(64), nullable=False),
    Column("state", String(30), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "code"),
    # `GET /s/{code}` is public: the code alone finds its tenant.
    UniqueConstraint("code"),
    UniqueConstraint("tenant_id", "member_id", "target_type", "target_id", "state"),
)

# The first click of each visitor on each code (a visitor is the cookie the redirect set).
share_clicks = Table(
    "share_clicks",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("code", String(16), nullable=False),
    Column("visitor", String(40), nullable=False),
    Column("clicked_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "code", "visitor"),
)
