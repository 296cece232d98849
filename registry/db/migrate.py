"""Apply the Alembic migrations in ``migrations/`` (``registry migrate``, and before ``registry serve``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

import migrations
from registry.db.engine import Database

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATION_LOCK = 0x72656769  # any constant shared by every replica
MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent
# the newest revision in migrations/versions (a test keeps them equal): a database already there starts without
# loading Alembic at all, which is most of a restart's import time
HEAD_REVISION = "0002"


def alembic_config(url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def current_revision(database: Database) -> str | None:
    try:
        async with database.read() as session:  # on SQLite, without building the async engine
            found = await session.scalar(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:  # no such table: a new database
        return None
    return None if found is None else str(found)


async def upgrade(database: Database, url: str, revision: str = "head") -> None:
    if revision == "head" and await current_revision(database) == HEAD_REVISION:
        return
    from alembic import command

    cfg = alembic_config(url)

    def _upgrade(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    # replicas may start together: one migrates while the others wait, then find nothing left to do
    if database.is_sqlite:  # in SQLite's write transaction, on a plain connection: no async engine, no aiosqlite
        await database.in_write_transaction(_upgrade)
        return
    async with database.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await connection.run_sync(_upgrade)
