"""The one reading of a database URL: every part of the registry that opens the database (the server, migrations,
the commands, Alembic) takes the URL ``resolve`` makes of the configured one, and nothing rewrites it again.

- the driver: the async one we ship for its database (``sqlite+aiosqlite``, ``postgresql+asyncpg``), whatever the
  user wrote (``sqlite://``, ``sqlite+pysqlite://``, ``postgres://``, ``postgresql+psycopg2://``); SQLite's threaded
  sessions open the same file with the standard library's driver;
- an in-memory SQLite database (``sqlite://``, ``sqlite:///:memory:``) is per connection, so it becomes one
  throwaway file for this process (its forked children included), the same for the server and its migrations;
- everything else (user, password, host, port, database, query options) is kept as given."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

from sqlalchemy.engine import URL, make_url

# a URL without a driver, or with a synchronous one, gets the async driver we ship for its database
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
}


def resolve(url: str | URL) -> URL:
    """The URL the registry opens for the configured ``url`` (see the module's docstring); resolving it again
    changes nothing."""
    parsed = make_url(url)
    driver = parsed.drivername.lower()
    parsed = parsed.set(drivername=_ASYNC_DRIVERS.get(driver, driver))
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        return parsed.set(database=_process_database_file())
    return parsed


def sqlite_file(url: URL) -> str | None:
    """The file (or ``file:`` URI) a resolved SQLite URL names, its directory made; None for PostgreSQL."""
    if url.get_backend_name() != "sqlite":
        return None
    database = str(url.database)
    if not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    return database


def shown(url: URL) -> str:
    """The URL for a message: its SQLite file, or the URL without its password."""
    return sqlite_file(url) or url.render_as_string(hide_password=True)


@cache
def _process_database_file() -> str:
    directory = tempfile.mkdtemp(prefix="registry-db-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return f"{directory}/registry.db"
