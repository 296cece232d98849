"""Migrations: a database an older revision wrote upgrades to head with its data, and back down again; a new
SQLite database takes the schema the migrations would make, without them."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.config import Config
from registry.db import migrate
from registry.db.engine import Database
from tests.api_helpers import client_on, digest_of, image_manifest, push_image
from tests.conftest import migrated_by_alembic

MANIFEST = image_manifest(b"config", [])
# the 0001 tables as that revision wrote them, with only the columns the rows below fill
REPOSITORIES = sa.table("repositories", sa.column("id"), sa.column("name"), sa.column("created_at", sa.DateTime(True)))
MANIFESTS = sa.table(
    "manifests",
    *(sa.column(name) for name in ("id", "repository_id", "digest", "media_type", "size")),
    sa.column("payload", sa.LargeBinary()),
    sa.column("created_at", sa.DateTime(True)),
)
TAGS = sa.table(
    "tags",
    *(sa.column(name) for name in ("repository_id", "name", "manifest_id")),
    sa.column("updated_at", sa.DateTime(True)),
)


async def write_0001_rows(connection: AsyncConnection) -> None:
    now = datetime.now(UTC)
    insert = sa.insert(REPOSITORIES).values(name="old/repo", created_at=now).returning(REPOSITORIES.c.id)
    repo_id = (await connection.execute(insert)).scalar_one()
    values = {"repository_id": repo_id, "digest": digest_of(MANIFEST), "size": len(MANIFEST), "created_at": now}
    media_type = "application/vnd.oci.image.manifest.v1+json"
    insert = sa.insert(MANIFESTS).values(**values, media_type=media_type, payload=MANIFEST).returning(MANIFESTS.c.id)
    manifest_id = (await connection.execute(insert)).scalar_one()
    for tag in ("v1", "latest"):
        values = {"repository_id": repo_id, "name": tag, "manifest_id": manifest_id, "updated_at": now}
        await connection.execute(sa.insert(TAGS).values(**values))


async def downgrade(config: Config, revision: str) -> None:
    from alembic import command

    database = Database(config.database_url)
    cfg = migrate.alembic_config(database.url)

    def _downgrade(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)

    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(_downgrade)
        assert await migrate.current_revision(database) == revision
    finally:
        await database.dispose()


async def test_a_0001_database_upgrades_with_its_tags(config: Config) -> None:
    database = Database(config.database_url)
    try:
        await migrate.upgrade(database, "0001")
        async with database.engine.begin() as connection:
            await write_0001_rows(connection)
    finally:
        await database.dispose()
    async with client_on(config) as client:  # starting migrates to head
        assert (await client.get("/v2/old/repo/tags/list")).json() == {"name": "old/repo", "tags": ["latest", "v1"]}
        assert (await client.get("/v2/old/repo/manifests/v1")).content == MANIFEST
        assert (await client.delete("/v2/old/repo/manifests/v1")).status_code == 202
        assert (await client.get("/v2/old/repo/tags/list")).json()["tags"] == ["latest"]


async def test_downgrade_to_0001_and_up_again(config: Config) -> None:
    async with client_on(config) as client:
        await push_image(client, "repo", "one")
    await downgrade(config, "0001")
    async with client_on(config) as client:
        assert (await client.get("/v2/repo/tags/list")).json()["tags"] == ["one"]
        await push_image(client, "repo", "two", seed="2")
        assert (await client.get("/v2/repo/tags/list")).json()["tags"] == ["one", "two"]


async def test_the_migrated_schema_is_the_one_the_code_declares(config: Config) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from registry.db.models import metadata

    database = Database(config.database_url)
    try:
        await migrate.upgrade(database, via_alembic=True)
        async with database.engine.connect() as connection:
            differences = await connection.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
    finally:
        await database.dispose()
    assert differences == []


def _schema(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as connection:
        return migrate.sqlite_schema(connection)


async def test_a_new_sqlite_database_takes_the_schema_the_migrations_make(tmp_path: Path) -> None:
    await migrated_by_alembic(tmp_path / "alembic.db")
    assert migrate.sqlite_at_head(str(tmp_path / "new.db"))
    assert migrate.sqlite_at_head(str(tmp_path / "new.db"))  # and then it is at head
    regenerate = f"{migrate.SQLITE_HEAD_SCHEMA.name} is stale: run `.venv/bin/python -m registry.db.migrate`"
    assert _schema(tmp_path / "new.db") == _schema(tmp_path / "alembic.db"), regenerate
    assert _schema(tmp_path / "new.db")[-1].endswith(f"VALUES ('{migrate.HEAD_REVISION}')")


def test_replicas_starting_together_make_a_new_database_once(tmp_path: Path) -> None:
    path = str(tmp_path / "new.db")
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(migrate.sqlite_at_head, [path] * 4)) == [True] * 4
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrate.HEAD_REVISION,)]


async def test_an_older_sqlite_database_is_left_to_alembic(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    await migrated_by_alembic(path, "0001")
    before = _schema(path)
    assert not migrate.sqlite_at_head(str(path))
    assert _schema(path) == before
    url = f"sqlite:///{path}"
    database = Database(url)
    try:
        await migrate.upgrade(database)
        assert await migrate.current_revision(database) == migrate.HEAD_REVISION
    finally:
        await database.dispose()
