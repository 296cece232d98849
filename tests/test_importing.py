"""``registry import``: distribution's repository tree (written here file by file, as distribution 2.8 writes it)
loaded into SQL, then served by the API as if it had been pushed: on every storage backend, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from registry import cli
from registry.app import create_app
from registry.config import Config, load_config
from registry.content import paths
from registry.content.import_report import (
    CORRUPT_MANIFEST,
    DANGLING_LINK,
    DANGLING_TAG,
    MISSING_BLOB,
    MISSING_CHILD,
    MISSING_MANIFEST,
    UNSUPPORTED_MANIFEST,
    Summary,
)
from registry.content.importing import Importer
from registry.db import migrate
from registry.db.engine import Database
from registry.db.models import manifest_blobs, manifest_references, manifests, repository_blobs, tags
from registry.digests import Digest
from storage_backends import create_backend
from storage_backends.base import StorageBackend
from tests.api_helpers import (
    DOCKER_MANIFEST,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    descriptor,
    digest_of,
    encode,
    image_manifest,
    index_manifest,
    push_image,
)
from tests.conftest import BASE_URL


class DistributionTree:
    """Writes what distribution 2.8 writes for a push: blob data, the repository's links, tag links."""

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend

    async def blob(self, data: bytes) -> str:
        digest = digest_of(data)
        await self.backend.put_content(paths.blob_path(Digest.parse(digest)), data)
        return digest

    async def link(self, directory: str, digest: str) -> None:
        algorithm, encoded = digest.split(":")
        await self.backend.put_content(f"{directory}/{algorithm}/{encoded}/link", digest.encode())

    async def layer(self, repo: str, data: bytes) -> str:
        digest = await self.blob(data)
        await self.link(paths.layer_links_dir(repo), digest)
        return digest

    async def manifest(self, repo: str, body: bytes, *tags: str) -> str:
        digest = await self.blob(body)
        await self.link(paths.manifest_revisions_dir(repo), digest)
        for tag in tags:
            await self.tag(repo, tag, digest)
        return digest

    async def tag(self, repo: str, tag: str, digest: str) -> None:
        await self.backend.put_content(paths.tag_current_link(repo, tag), digest.encode())
        await self.link(f"{paths.manifest_tags_dir(repo)}/{tag}/index", digest)

    async def image(self, repo: str, seed: str, *tags: str, shared: bytes = b"shared base layer") -> bytes:
        config, layer = f'{{"config": "{seed}"}}'.encode(), f"layer {seed}".encode()
        for blob in (config, layer, shared):
            await self.layer(repo, blob)
        body = image_manifest(config, [shared, layer], DOCKER_MANIFEST)
        await self.manifest(repo, body, *tags)
        return body


@pytest.fixture
async def storage(config: Config) -> AsyncIterator[StorageBackend]:
    backend = create_backend(config.storage.driver, config.storage.params)
    yield backend
    await backend.close()


@contextlib.asynccontextmanager
async def database(config: Config) -> AsyncIterator[Database]:
    db = Database(config.database_url)
    try:
        await migrate.upgrade(db)
        yield db
    finally:
        await db.dispose()


async def import_all(config: Config, backend: StorageBackend, **options: Any) -> Summary:
    async with database(config) as db:
        return await Importer(backend, db, **options).run()


@contextlib.asynccontextmanager
async def serving(config: Config, backend: StorageBackend) -> AsyncIterator[httpx.AsyncClient]:
    async with database(config) as db:
        app = create_app(config, backend=backend, database=db)
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
            yield c


async def written_repositories(tree: DistributionTree) -> dict[str, Any]:
    """Three repositories (one nested in another's path): images sharing a layer, an index, a referrer."""
    amd = await tree.image("team/app", "amd64", "1.0", "latest")
    arm = await tree.image("team/app", "arm64")
    index = index_manifest(
        [(amd, {"os": "linux", "architecture": "amd64"}), (arm, {"os": "linux", "architecture": "arm64"})]
    )
    await tree.manifest("team/app", index, "multi")
    empty = await tree.layer("team/app", b"{}")
    signature = await tree.layer("team/app", b"a signature")
    artifact = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
            "layers": [descriptor("application/octet-stream", b"a signature")],
            "subject": descriptor(DOCKER_MANIFEST, amd),
        }
    )
    assert signature
    await tree.manifest("team/app", artifact)
    await tree.image("team", "parent", "v1")
    await tree.image("tools/busybox", "busybox", "1", "2")
    return {"amd": amd, "arm": arm, "index": index, "artifact": artifact}


async def test_import_serves_catalog_tags_manifests_blobs_and_referrers_as_pushed(
    config: Config, storage: StorageBackend
) -> None:
    written = await written_repositories(DistributionTree(storage))
    summary = await import_all(config, storage)

    assert (summary.repositories, summary.manifests, summary.tags) == (3, 6, 6), summary
    assert not summary.skipped, summary.lines(False)
    assert summary.blobs == 11  # four images' configs and own layers, their shared layer, {} and the signature
    async with serving(config, storage) as client:
        assert (await client.get("/v2/_catalog")).json() == {"repositories": ["team", "team/app", "tools/busybox"]}
        listed = (await client.get("/v2/team/app/tags/list")).json()
        assert listed == {"name": "team/app", "tags": ["1.0", "latest", "multi"]}
        by_tag = await client.get("/v2/team/app/manifests/multi", headers={"Accept": OCI_INDEX})
        assert by_tag.content == written["index"]
        assert by_tag.headers["Docker-Content-Digest"] == digest_of(written["index"])
        by_digest = await client.get(f"/v2/team/app/manifests/{digest_of(written['arm'])}")
        assert by_digest.content == written["arm"]
        layer = json.loads(written["amd"])["layers"][0]
        head = await client.head(f"/v2/team/app/blobs/{layer['digest']}")
        assert (head.status_code, head.headers["Content-Length"]) == (200, str(layer["size"]))
        blob = await client.get(f"/v2/team/app/blobs/{layer['digest']}", follow_redirects=True)
        assert blob.content == b"shared base layer"
        referrers = (await client.get(f"/v2/team/app/referrers/{digest_of(written['amd'])}")).json()
        assert [m["digest"] for m in referrers["manifests"]] == [digest_of(written["artifact"])]
        assert referrers["manifests"][0]["artifactType"] == "application/vnd.example.signature"
        # imported content behaves as pushed content: a new push reuses the imported layer by link
        await push_image(client, "team/app", "new", seed="after import")
    async with database(config) as db, db.read() as session:
        references = await session.scalar(select(func.count()).select_from(manifest_references))
        config_links = await session.scalar(select(func.count()).select_from(manifest_blobs))
    assert references == 2  # the index's two children
    assert config_links == 4 * 3 + 2 + 2  # four images' config and two layers, the artifact's two, the new push's


async def test_what_cannot_be_imported_is_skipped_and_named(config: Config, storage: StorageBackend) -> None:
    tree = DistributionTree(storage)
    good = await tree.image("team/app", "good", "good")
    await tree.link(paths.layer_links_dir("team/app"), digest_of(b"never uploaded"))  # a dangling blob link
    missing_blob = image_manifest(b"{}", [b"layer gone"], DOCKER_MANIFEST)  # its layer was never stored
    await tree.layer("team/app", b"{}")
    await tree.manifest("team/app", missing_blob, "broken")
    corrupt = await tree.manifest("team/app", b'{"schemaVersion": 2, "mediaType": "x"}')
    await storage.put_content(paths.blob_path(Digest.parse(corrupt)), b"tampered")  # bytes no longer match
    schema1 = encode({"schemaVersion": 1, "name": "team/app", "tag": "old", "fsLayers": []})
    await tree.manifest("team/app", schema1, "old")
    await tree.link(paths.manifest_revisions_dir("team/app"), digest_of(b"no bytes"))  # a revision without bytes
    index = index_manifest(
        [(good, {"os": "linux", "architecture": "amd64"}), (b"gone", {"os": "linux", "architecture": "arm64"})]
    )
    await tree.manifest("team/app", index, "partial")
    await tree.tag("team/app", "dangling", digest_of(b"nothing"))

    summary = await import_all(config, storage)

    assert dict(summary.skipped) == {
        DANGLING_LINK: 1,
        MISSING_BLOB: 1,
        CORRUPT_MANIFEST: 1,
        UNSUPPORTED_MANIFEST: 1,
        MISSING_MANIFEST: 1,
        MISSING_CHILD: 1,
        DANGLING_TAG: 3,  # broken, old (their manifests were skipped) and dangling
    }, summary.lines(False)
    assert (summary.manifests, summary.tags) == (2, 2)  # good and the partial index, tagged good and partial
    assert any(digest_of(b"layer gone") in line for line in summary.lines(False))
    async with serving(config, storage) as client:
        listed = (await client.get("/v2/team/app/tags/list")).json()["tags"]
        assert listed == ["good", "partial"]
        assert (await client.head(f"/v2/team/app/blobs/{digest_of(b'never uploaded')}")).status_code == 404


class FailingBackend:
    """A backend that fails every read after ``budget`` of them: an import killed halfway."""

    def __init__(self, backend: StorageBackend, budget: int) -> None:
        self._backend = backend
        self._budget = budget

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._backend, name)
        if name not in ("get_content", "stat", "reader", "walk", "list"):
            return attribute
        self._budget -= 1
        if self._budget < 0:
            raise RuntimeError("killed")
        return attribute


async def table_rows(config: Config) -> dict[str, set[tuple[Any, ...]]]:
    async with database(config) as db, db.read() as session:
        found = {}
        for table, columns in (
            (manifests, (manifests.c.digest, manifests.c.media_type, manifests.c.subject_digest)),
            (tags, (tags.c.name, tags.c.manifest_id, tags.c.updated_at)),
            (repository_blobs, (repository_blobs.c.repository_id, repository_blobs.c.blob_digest)),
            (manifest_references, (manifest_references.c.parent_id, manifest_references.c.child_id)),
            (manifest_blobs, (manifest_blobs.c.manifest_id, manifest_blobs.c.blob_digest)),
        ):
            found[table.name] = {tuple(row) for row in (await session.execute(select(*columns))).all()}
    return found


@pytest.mark.parametrize("budget", [5, 15, 25])  # of the 37 storage calls the whole import makes
async def test_an_import_killed_halfway_converges_when_run_again(
    config: Config, storage: StorageBackend, budget: int
) -> None:
    await written_repositories(DistributionTree(storage))
    with pytest.raises(ExceptionGroup):
        await import_all(config, FailingBackend(storage, budget), workers=2, batch=2)  # type: ignore[arg-type]
    assert len((await table_rows(config))["tags"]) < 6  # killed before the end
    first = await import_all(config, storage, batch=2)
    again = await import_all(config, storage)
    assert (first.manifests, first.tags, again.manifests, again.tags) == (6, 6, 6, 6)
    assert not first.skipped and not again.skipped
    rows = await table_rows(config)
    assert len(rows["manifests"]) == 6 and len(rows["manifest_references"]) == 2, rows


async def test_running_again_keeps_a_tag_pushed_since(config: Config, storage: StorageBackend) -> None:
    """distribution's old tag link must not undo a push made to this registry after the import."""
    tree = DistributionTree(storage)
    await tree.image("team/app", "old", "v1")
    await import_all(config, storage)
    async with serving(config, storage) as client:
        _, pushed = await push_image(client, "team/app", "v1", seed="pushed here")
    await import_all(config, storage)
    async with serving(config, storage) as client:
        served = await client.get("/v2/team/app/manifests/v1")
    assert served.headers["Docker-Content-Digest"] == pushed


async def test_registry_import_dry_run_writes_nothing_then_the_import_prints_its_summary(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "config.yml"
    config_file.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
        f"database:\n  url: {database_url}\n"
    )
    config = load_config(str(config_file))
    backend = create_backend(config.storage.driver, config.storage.params)
    await DistributionTree(backend).image("team/app", "one", "v1")
    await backend.close()

    await asyncio.to_thread(cli.main, ["import", str(config_file), "--dry-run"])
    out, err = capsys.readouterr()
    assert "would import: 1 repositories, 1 manifests, 1 tags, 3 blob links; 3 blobs" in out, out
    assert "import: " in err  # progress
    untouched = Database(database_url)  # the dry run imported into a throwaway database
    try:
        assert await migrate.current_revision(untouched) is None
    finally:
        await untouched.dispose()

    await asyncio.to_thread(cli.main, ["import", str(config_file)])
    out, _ = capsys.readouterr()
    size = sum(len(blob) for blob in (b'{"config": "one"}', b"layer one", b"shared base layer"))
    assert out.splitlines() == [
        f"imported: 1 repositories, 1 manifests, 1 tags, 3 blob links; 3 blobs ({size} bytes)",
        "skipped: nothing",
    ]
