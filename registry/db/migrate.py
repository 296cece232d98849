"""Apply the Alembic migrations in ``migrations/`` (``registry migrate``, and before ``registry serve``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import text
from sqlalchemy.engine import Connection

import migrations
from registry.db.engine import Database

MIGRATION_LOCK = 0x72656769  # any constant shared by every replica
MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(database: Database, url: str, revision: str = "head") -> None:
    cfg = alembic_config(url)

    def _upgrade(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    # replicas may start together: one migrates while the others wait, then find nothing left to do
    engine = database.engine.execution_options(sqlite_immediate=True)
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await connection.run_sync(_upgrade)
