"""Migrations: a database an older revision wrote upgrades to head with its data, and back down again."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.config import Config
from registry.db import migrate
from registry.db.engine import Database
from tests.api_helpers import client_on, digest_of, image_manifest, push_image

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
    cfg = migrate.alembic_config(config.database_url)

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
        await migrate.upgrade(database, config.database_url, "0001")
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
        await migrate.upgrade(database, config.database_url)
        async with database.engine.connect() as connection:
            differences = await connection.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
    finally:
        await database.dispose()
    assert differences == []
