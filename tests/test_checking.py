"""``registry check [--repair] [--deep]``: a blob file deleted behind the registry's back is found, and repaired so
that HEAD answers 404 and a push uploads it again; damaged bytes are found by ``--deep``; orphans are counted."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from registry import cli
from registry.config import Config, load_config
from registry.content import paths
from registry.content.checking import CORRUPT, MISSING, Checker, CheckReport
from registry.db.engine import Database
from registry.digests import Digest
from storage_backends import CHUNK_SIZE, create_backend
from storage_backends.base import StorageBackend
from storage_backends.inmemory import InMemoryBackend
from tests.api_helpers import digest_of, push_blob, push_image
from tests.test_importing import database, serving

LAYER = b"layer team/app one"  # what push_image(..., seed="one") uploads as the layer


@pytest.fixture
async def storage(config: Config) -> AsyncIterator[StorageBackend]:
    backend = create_backend(config.storage.driver, config.storage.params)
    yield backend
    await backend.close()


async def check(config: Config, backend: StorageBackend, **options: bool) -> CheckReport:
    async with database(config) as db:
        return await Checker(backend, db, batch=2, **options).run()


async def test_a_deleted_blob_is_found_and_repaired_so_head_says_404_and_a_push_uploads_it_again(
    config: Config, storage: StorageBackend
) -> None:
    async with serving(config, storage) as client:
        _, first = await push_image(client, "team/app", "v1", seed="one")
        await push_blob(client, "team/other", LAYER)  # linked in a second repository too
    layer = Digest.parse(digest_of(LAYER))
    await storage.delete(paths.blob_path(layer))

    found = await check(config, storage)
    assert found.bad_blobs == {MISSING: 1} and found.blobs == 2, found.lines(False)
    async with serving(config, storage) as client:
        assert (await client.head(f"/v2/team/app/blobs/{layer}")).status_code == 200  # the lie check finds

    repaired = await check(config, storage, repair=True)
    assert (repaired.unlinked, repaired.needing) == (2, 1), repaired.lines(True)
    assert f"  manifest team/app@{first}: names a blob that is gone; push it again" in repaired.lines(True)
    async with serving(config, storage) as client:
        for repo in ("team/app", "team/other"):
            assert (await client.head(f"/v2/{repo}/blobs/{layer}")).status_code == 404
        await push_image(client, "team/app", "v1", seed="one")  # uploads the layer again
        fetched = await client.get(f"/v2/team/app/blobs/{layer}", follow_redirects=True)
        assert fetched.content == LAYER
    assert (await check(config, storage)).problems == 0


async def test_deep_finds_damaged_bytes_of_the_right_size(config: Config, storage: StorageBackend) -> None:
    async with serving(config, storage) as client:
        await push_image(client, "team/app", "v1", seed="one")
    layer = Digest.parse(digest_of(LAYER))
    await storage.put_content(paths.blob_path(layer), b"X" * len(LAYER))
    assert (await check(config, storage)).problems == 0  # sizes agree
    assert (await check(config, storage, deep=True)).bad_blobs == {CORRUPT: 1}
    await check(config, storage, deep=True, repair=True)
    async with serving(config, storage) as client:
        assert (await client.head(f"/v2/team/app/blobs/{layer}")).status_code == 404
        await push_image(client, "team/app", "v1", seed="one")
        assert (await client.get(f"/v2/team/app/blobs/{layer}", follow_redirects=True)).content == LAYER


async def test_orphans_are_counted_and_left(config: Config, storage: StorageBackend) -> None:
    orphan = b"no row names me"
    await storage.put_content(paths.blob_path(Digest.parse(digest_of(orphan))), orphan)
    found = await check(config, storage)
    assert (found.orphans, found.orphan_bytes, found.problems) == (1, len(orphan), 0)


async def test_registry_check_exits_1_while_a_blob_is_missing_and_0_once_repaired(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "config.yml"
    doc = {
        "version": "0.1",
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}},
        "database": {"url": database_url},
    }
    config_file.write_text(yaml.safe_dump(doc))
    config = load_config(str(config_file))
    async with serving(config, None) as client:  # type: ignore[arg-type]
        await push_image(client, "team/app", "v1", seed="one")
    (tmp_path / "data" / paths.blob_path(Digest.parse(digest_of(LAYER)))).unlink()
    with pytest.raises(SystemExit) as exited:
        await asyncio.to_thread(cli.main, ["check", str(config_file)])  # the command runs its own event loop
    assert exited.value.code == 1
    assert f"blobs: 1 {MISSING}" in capsys.readouterr().out
    await asyncio.to_thread(cli.main, ["check", str(config_file), "--repair"])
    assert "repaired: 1 blob links dropped; 1 manifests need a push again" in capsys.readouterr().out


async def test_deep_hashes_large_chunks_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop goes on reading the other blobs (and hashing on the other cores) while a large chunk is hashed."""
    hashed_on: list[tuple[int, bool]] = []  # each chunk's length, and whether the event loop's thread hashed it
    hasher = Digest.hasher

    def spied(digest: Digest) -> Any:
        real = hasher(digest)

        class Spy:
            def update(self, chunk: bytes) -> None:
                hashed_on.append((len(chunk), threading.current_thread() is threading.main_thread()))
                real.update(chunk)

            def hexdigest(self) -> str:
                return str(real.hexdigest())

        return Spy()

    monkeypatch.setattr(Digest, "hasher", spied)
    backend = InMemoryBackend()
    large, small = b"x" * (CHUNK_SIZE + 1000), b"a config"
    for data in (large, small):
        await backend.put_content(paths.blob_path(Digest.parse(digest_of(data))), data)
    checker = Checker(backend, cast(Database, None), deep=True)
    assert [await checker._verify(digest_of(data), len(data)) for data in (large, small)] == [None, None]
    assert hashed_on == [(CHUNK_SIZE, False), (1000, True), (len(small), True)]
