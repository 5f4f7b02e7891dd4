from sqlalchemy import Column, Integer, PrimaryKeyConstraint, String, Table

from shequn.db import Fen, Id, JsonType, UTCDateTime, metadata

# One row per tenant that changed a growth setting; a tenant without one has the defaults.
growth_settings = Table(
    "growth_settings",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("share_url_templates", JsonType, nullable=False),
    Column("short_link_base", String(200), nullable=False),
    Column("points_earn_bp", Integer, nullable=False),
    Column("fen_per_point", Integer, nullable=False),
    Column("points_cap_bp", Integer, nullable=False),
    Column("points_expiry_days", Integer, nullable=False),
    Column("points_rules", JsonType, nullable=False),
    Column("stock_cover_limit_days", Integer, nullable=False),
    Column("new_agent_monthly_sales", Integer, nullable=False),
    Column("buyback_window_days", Integer, nullable=False),
    Column("buyback_price_bp", Integer, nullable=False),
    Column("min_first_stock_order_fen", Fen, nullable=False),
    Column("velocity_limit_per_hour", Integer, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id"),
)
