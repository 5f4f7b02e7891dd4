"""Schema management: every table module, and the Alembic upgrade used by CLI and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from shequn.db import metadata


def all_metadata() -> MetaData:
    """Import every domain's tables so the shared metadata is complete."""
    from shequn.catalog import tables as _catalog  # noqa: F401
    from shequn.community import tables as _community  # noqa: F401
    from shequn.community.cadence import tables as _cadence  # noqa: F401
    from shequn.community.complaints import tables as _complaints  # noqa: F401
    from shequn.community.gatherings import tables as _gatherings  # noqa: F401
    from shequn.community.health import tables as _health  # noqa: F401
    from shequn.community.leaders import tables as _leaders  # noqa: F401
    from shequn.community.path import tables as _path  # noqa: F401
    from shequn.community.programs import tables as _programs  # noqa: F401
    from shequn.console import tables as _console  # noqa: F401
    from shequn.distribution import tables as _distribution  # noqa: F401
    from shequn.events import tables as _events  # noqa: F401
    from shequn.growth import tables as _growth  # noqa: F401
    from shequn.insights import repurchase as _repurchase  # noqa: F401
    from shequn.ledger import tables as _ledger  # noqa: F401
    from shequn.members import tables as _members  # noqa: F401
    from shequn.orders import tables as _orders  # noqa: F401
    from shequn.referrals import tables as _referrals  # noqa: F401
    from shequn.tenancy import tables as _tenancy  # noqa: F401
    from shequn.tiers import tables as _tiers  # noqa: F401
    from shequn.wallet import tables as _wallet  # noqa: F401
    from shequn.webhooks import tables as _webhooks  # noqa: F401

    return metadata


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "shequn:migrations")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Bring the database to `revision` (creates the schema on an empty database)."""
    command.upgrade(alembic_config(database_url), revision)


class DatabaseProblem(Exception):
    """The database a command was pointed at cannot be used; `code` names why (a message
    `error.<code>` says it to a person)."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def checked_url(database_url: str) -> URL:
    """The URL parsed, refused unless it names SQLite or PostgreSQL."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise DatabaseProblem("database_url_invalid", url=_shown(database_url)) from None
    if url.get_backend_name() not in SUPPORTED_BACKENDS:
        raise DatabaseProblem("database_backend_unsupported", backend=url.get_backend_name())
    return url


def _shown(database_url: str) -> str:
    """The URL without its password, for a message."""
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return database_url[:64]


def _sqlite_file(url: URL) -> Path | None:
    name = url.database
    return None if name in (None, "", ":memory:") else Path(name)


def prepare_database(database_url: str) -> None:
    """Create the database if it is a SQLite file that does not exist yet, and bring it to the
    current schema."""
    url = checked_url(database_url)
    path = _sqlite_file(url) if url.get_backend_name() == "sqlite" else None
    if path is not None and not path.parent.exists():
        raise DatabaseProblem("database_folder_missing", folder=str(path.parent))
    try:
        upgrade_database(database_url)
    except (DBAPIError, NoSuchModuleError) as exc:
        raise DatabaseProblem("database_unreachable", url=_shown(database_url)) from exc


def require_current_database(database_url: str) -> None:
    """Refuse a database that does not exist or is not at the current schema, without
    creating or changing anything (for the commands that only read)."""
    url = checked_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = _sqlite_file(url)
        if path is not None and not path.exists():
            raise DatabaseProblem("database_missing", path=str(path))
        # Opened read-only: nothing, not even an empty file, is written.
        engine = create_engine(
            f"sqlite:///file:{path}?mode=ro&uri=true" if path is not None else "sqlite://"
        )
    else:
        engine = create_engine(url.set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except (DBAPIError, NoSuchModuleError) as exc:
        raise DatabaseProblem("database_unreachable", url=_shown(database_url)) from exc
    finally:
        engine.dispose()
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    if current is None:
        raise DatabaseProblem("database_not_initialised", url=_shown(database_url))
    if current != head:
        raise DatabaseProblem("database_outdated", url=_shown(database_url))
