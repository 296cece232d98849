"""The database bound to its storage. A database records the storage it indexes when a command first opens it
with one (``storage_binding``); ``serve``, ``import`` and ``gc`` then refuse a configuration that names another,
since metadata over the wrong storage answers "exists" for bytes that are not there. ``serve`` also refuses a
storage that holds distribution's repositories this database has not imported: an empty catalog over full storage
would look like lost images."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass

from registry.config import Config, StorageConfig
from registry.content import distribution
from registry.db import migrate, storage_binding
from registry.db.engine import Database
from registry.db.urls import shown
from storage_backends import create_backend
from storage_backends.base import StorageBackend


class BindingError(Exception):
    """A one-line refusal, with the way out."""


@dataclass(frozen=True)
class StorageIdentity:
    driver: str
    bucket: str | None
    endpoint: str | None
    rootdirectory: str

    @classmethod
    def of(cls, storage: StorageConfig) -> StorageIdentity:
        params = storage.params
        if storage.driver == "s3":
            endpoint = str(params.get("regionendpoint") or "").rstrip("/") or None
            root = str(params.get("rootdirectory") or "").strip("/")
            return cls("s3", str(params["bucket"]), endpoint, root)
        return cls(storage.driver, None, None, str(params.get("rootdirectory", "")))

    def describe(self) -> str:
        if self.driver != "s3":
            return f"{self.driver} storage {self.rootdirectory}"
        where = f"s3://{self.bucket}/{self.rootdirectory}".rstrip("/")
        return f"{where} at {self.endpoint or 'AWS'}"


async def bind(database: Database, storage: StorageConfig, *, rebind: bool = False) -> None:
    """Record the storage on a database that has none; refuse one that indexes another (``rebind``: record this
    one instead, after the storage moved). In-memory storage is never recorded: its database lives no longer."""
    if storage.driver == "inmemory":
        return
    wanted = StorageIdentity.of(storage)
    found = await database.write(lambda session: storage_binding.record(session, asdict(wanted)))
    indexed = StorageIdentity(found["driver"], found["bucket"], found["endpoint"], found["rootdirectory"])
    if indexed == wanted:
        return
    if rebind:
        await database.write(lambda session: storage_binding.replace(session, asdict(wanted)))
        return
    raise BindingError(
        f"the database {shown(database.url)} indexes {indexed.describe()}, but the configuration names "
        f"{wanted.describe()}: set database.url to that storage's own database (or a new one, then run "
        "`registry import`), or, if this storage is a copy or a move of the other, run `registry import --rebind`"
    )


async def check_imported(database: Database, backend: StorageBackend, config_path: str | None) -> None:
    """Refuse a storage that holds distribution's repositories when no import into this database has finished."""
    async with database.read() as session:
        found = await storage_binding.recorded(session)
    if found is not None and found["imported_at"] is not None:
        return
    if await distribution.holds_repositories(backend):
        raise BindingError(
            "the storage holds repositories distribution (registry:2) wrote, which this database has not imported: "
            f"run `registry import {config_path or '[config.yml]'}` first (it may run while registry:2 still serves; "
            "run it again once registry:2 is stopped, to load the pushes made meanwhile)"
        )


async def mark_imported(database: Database) -> None:
    await database.write(storage_binding.mark_imported)


async def check_config(config: Config, config_path: str | None, *, serving: bool) -> None:
    """What ``serve`` and ``gc`` check before they start, on a migrated database: the storage it indexes, and
    (``serving``) that distribution's data in it was imported."""
    database = Database(config.database_url)
    backend = create_backend(config.storage.driver, config.storage.params)
    try:
        await bind(database, config.storage)
        if serving:
            await check_imported(database, backend, config_path)
    finally:
        await database.dispose()
        await backend.close()


@asynccontextmanager
async def opened(
    config: Config, *, url: str | None = None, bound: bool = True, rebind: bool = False
) -> AsyncIterator[tuple[Database, StorageBackend]]:
    """What a command works on: the database at ``url`` (the configured one by default), migrated and, when
    ``bound``, bound to the configured storage; and that storage. Both closed after."""
    url = url or config.database_url
    database = Database(url)
    backend = create_backend(config.storage.driver, config.storage.params)
    try:
        await migrate.upgrade(database)
        if bound:
            await bind(database, config.storage, rebind=rebind)
        yield database, backend
    finally:
        await database.dispose()
        await backend.close()
