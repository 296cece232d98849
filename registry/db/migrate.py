"""Apply the Alembic migrations in ``migrations/`` (``registry migrate``, and before ``registry serve``)."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

import migrations
from registry.db import sqlite
from registry.db.engine import Database

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATION_LOCK = 0x72656769  # any constant shared by every replica
MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent
# the newest revision in migrations/versions (a test keeps them equal): a database already there starts without
# loading Alembic at all, which is most of a restart's import time
HEAD_REVISION = "0009"
# what the migrations make of a new SQLite database, statement by statement (``python -m registry.db.migrate`` writes
# it; a test keeps it equal to what they make): a new database gets it in one transaction, without Alembic
SQLITE_HEAD_SCHEMA = MIGRATIONS_DIR / "sqlite_head.sql"


def alembic_config(url: URL) -> AlembicConfig:
    """Alembic's configuration for a database at ``url``, as ``registry.db.urls.resolve`` made it (``Database.url``)."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


async def current_revision(database: Database) -> str | None:
    try:
        async with database.read() as session:  # on SQLite, without building the async engine
            found = await session.scalar(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:  # no such table: a new database
        return None
    return None if found is None else str(found)


def _sqlite_revision(connection: sqlite3.Connection) -> str | None:
    try:
        found = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no such table: a new database
        return None
    return None if found is None else str(found[0])


def sqlite_head_statements() -> list[str]:
    statements, pending = [], ""
    for line in SQLITE_HEAD_SCHEMA.read_text().splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"{SQLITE_HEAD_SCHEMA}: an incomplete statement at the end: {pending!r}")
    return statements


def sqlite_at_head(path: str) -> bool:
    """Whether the SQLite database at ``path`` is at head, with the standard library alone; a new one (no table at
    all) is first given the head schema in one transaction, so it is at head without Alembic or its imports. False
    for a database an older revision made: Alembic migrates it."""
    with closing(sqlite.connect(path, busy_timeout_ms=30_000)) as connection:
        if _sqlite_revision(connection) == HEAD_REVISION:
            return True
        connection.execute("BEGIN IMMEDIATE")  # replicas or workers starting together: one creates, the others see it
        try:
            if connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                return _sqlite_revision(connection) == HEAD_REVISION
            for statement in sqlite_head_statements():
                connection.execute(statement)
            connection.execute("COMMIT")
        finally:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
    return True


async def at_head(database: Database) -> bool:
    """Whether the database is at head; a new SQLite database is brought there first (``sqlite_at_head``)."""
    if database.sqlite_path is not None:
        return await asyncio.to_thread(sqlite_at_head, database.sqlite_path)
    return await current_revision(database) == HEAD_REVISION


async def upgrade(database: Database, revision: str = "head", *, via_alembic: bool = False) -> None:
    """To ``revision``; to head, a new SQLite database takes the head schema directly, unless ``via_alembic``."""
    if revision == "head" and not via_alembic and await at_head(database):
        return
    from alembic import command

    cfg = alembic_config(database.url)

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


async def _write_sqlite_head_schema() -> None:
    """Migrate a new SQLite database with Alembic and write what that made to ``SQLITE_HEAD_SCHEMA``."""
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/head.db"
        database = Database(url)
        try:
            await upgrade(database, via_alembic=True)
        finally:
            await database.dispose()
        with closing(sqlite3.connect(f"{directory}/head.db")) as connection:
            statements = sqlite_schema(connection)
    header = f"-- written by `python -m registry.db.migrate` from the migrations up to {HEAD_REVISION}: do not edit\n"
    SQLITE_HEAD_SCHEMA.write_text(header + "".join(f"{statement};\n" for statement in statements))


def sqlite_schema(connection: sqlite3.Connection) -> list[str]:
    """A SQLite database's schema as the statements that make it, in the order they were made, and its revision."""
    made = connection.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite%' ORDER BY rowid"
    )
    statements = [str(sql) for (sql,) in made]
    revision = _sqlite_revision(connection)
    if revision is not None:
        statements.append(f"INSERT INTO alembic_version (version_num) VALUES ('{revision}')")
    return statements


if __name__ == "__main__":
    asyncio.run(_write_sqlite_head_schema())
    print(f"wrote {SQLITE_HEAD_SCHEMA}", file=sys.stderr)
