"""Schema management: every table module, and the Alembic upgrade used by CLI and tests."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

from shequn.db import metadata


def all_metadata() -> MetaData:
    """Import every domain's tables so the shared metadata is complete."""
    from shequn.catalog import tables as _catalog  # noqa: F401
    from shequn.distribution import tables as _distribution  # noqa: F401
    from shequn.events import tables as _events  # noqa: F401
    from shequn.ledger import tables as _ledger  # noqa: F401
    from shequn.members import tables as _members  # noqa: F401
    from shequn.orders import tables as _orders  # noqa: F401
    from shequn.referrals import tables as _referrals  # noqa: F401
    from shequn.tenancy import tables as _tenancy  # noqa: F401
    from shequn.tiers import tables as _tiers  # noqa: F401
    from shequn.wallet import tables as _wallet  # noqa: F401

    return metadata


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "shequn:migrations")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Bring the database to `revision` (creates the schema on an empty database)."""
    command.upgrade(alembic_config(database_url), revision)
