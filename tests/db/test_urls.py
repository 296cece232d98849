"""A database URL is read once, by ``registry.db.urls.resolve``: the server, its migrations, Alembic and the
commands all open what it made of the configured URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from registry.db import migrate, queries
from registry.db.engine import Database, sqlite_path
from registry.db.urls import resolve, shown
from tests.conftest import POSTGRES_ADMIN_URL, postgres_database


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Database]:
    database = Database(url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("sqlite:////var/lib/registry/registry.db", "sqlite+aiosqlite:////var/lib/registry/registry.db"),
        ("sqlite+pysqlite:///r.db", "sqlite+aiosqlite:///r.db"),
        ("SQLite:///r.db", "sqlite+aiosqlite:///r.db"),
        ("postgresql://registry@db/registry", "postgresql+asyncpg://registry@db/registry"),
        ("postgres://registry@db/registry", "postgresql+asyncpg://registry@db/registry"),
        ("postgresql+psycopg2://registry@db/registry", "postgresql+asyncpg://registry@db/registry"),
        ("postgresql+asyncpg://registry@db/registry", "postgresql+asyncpg://registry@db/registry"),
    ],
)
def test_a_url_gets_the_async_driver_we_ship_and_resolving_again_changes_nothing(given: str, used: str) -> None:
    resolved = resolve(given)
    assert resolved.render_as_string(hide_password=False) == used
    assert resolve(resolved) == resolved
    assert resolve(resolved.render_as_string(hide_password=False)) == resolved


def test_a_postgresql_url_keeps_its_password_and_options() -> None:
    given = "postgresql://reg:p%40ss%25w@db.internal:6432/registry?ssl=require&prepared_statement_cache_size=0"
    resolved = resolve(given)
    assert (resolved.drivername, resolved.username, resolved.password) == ("postgresql+asyncpg", "reg", "p@ss%w")
    assert (resolved.host, resolved.port, resolved.database) == ("db.internal", 6432, "registry")
    assert dict(resolved.query) == {"ssl": "require", "prepared_statement_cache_size": "0"}
    alembic_url = migrate.alembic_config(resolved).get_main_option("sqlalchemy.url")  # Alembic gets it unchanged
    assert alembic_url is not None and make_url(alembic_url) == resolved
    assert "p@ss" not in shown(resolved) and "p%40ss" not in shown(resolved)


@pytest.mark.parametrize("other", ["sqlite:///{path}", "sqlite+pysqlite:///{path}", "SQLITE+AIOSQLITE:///{path}"])
async def test_every_spelling_of_a_sqlite_url_reaches_the_same_file(tmp_path: Path, other: str) -> None:
    path = tmp_path / "sub" / "registry.db"
    async with opened(f"sqlite+aiosqlite:///{path}") as first:
        await migrate.upgrade(first)
        await first.write(lambda s: queries.ensure_repository(s, "library/app"))
    async with opened(other.format(path=path)) as second:
        assert second.sqlite_path == str(path) == sqlite_path(other.format(path=path))
        async with second.read() as session:
            assert await queries.repository_id(session, "library/app") == 1


@pytest.mark.parametrize("memory", ["sqlite://", "sqlite:///:memory:", "sqlite+aiosqlite:///:memory:"])
async def test_in_memory_sqlite_is_one_file_for_the_process_for_migrations_and_the_app(memory: str) -> None:
    async with opened("sqlite+aiosqlite:///:memory:") as migrated:  # what config gives in-memory storage
        await migrate.upgrade(migrated)
        await migrated.write(lambda s: queries.ensure_repository(s, "in/memory"))
        assert migrated.sqlite_path is not None
        alembic_url = migrate.alembic_config(migrated.url).get_main_option("sqlalchemy.url")
        assert alembic_url is not None and make_url(alembic_url).database == migrated.sqlite_path
    async with opened(memory) as app:
        assert app.sqlite_path == migrated.sqlite_path
        assert await migrate.current_revision(app) == migrate.HEAD_REVISION
        async with app.read() as session:
            assert await queries.repository_id(session, "in/memory") is not None


@pytest.mark.skipif(POSTGRES_ADMIN_URL is None, reason="REGISTRY_TEST_POSTGRES names no PostgreSQL server")
async def test_a_postgresql_urls_options_reach_the_server() -> None:
    async with postgres_database() as url:
        plain = make_url(url).set(drivername="postgresql")  # as a user writes it, with a driver option
        given = plain.update_query_dict({"prepared_statement_cache_size": "0"}).render_as_string(hide_password=False)
        async with opened(given) as database:
            assert database.url.query["prepared_statement_cache_size"] == "0"
            await migrate.upgrade(database)
            async with database.read() as session:
                assert await session.scalar(text("SELECT current_database()")) == plain.database
            async with database.engine.connect() as connection:  # SQLAlchemy's asyncpg adapter took the option
                adapted = (await connection.get_raw_connection()).dbapi_connection
                assert getattr(adapted, "_prepared_statement_cache", "missing") is None
