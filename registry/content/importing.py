"""``registry import``: distribution's repository tree into SQL, the rows a push would have written.

Each repository in four passes, each streamed in batches of ``batch`` items with one transaction a batch:
blob links (each blob's size from storage), manifest revisions (their bytes read, checked against their digest and
parsed as a push parses them; the blobs they name linked), the references of each index to its children (once every
manifest of the repository is in), then tags. Every write ignores rows already there (a tag moves only to a newer
push), and a manifest already in the database is not read again: an import killed at any point and run again
converges, and one run again after distribution took more pushes loads only those. Several repositories are
imported at once (``workers``), which is what makes listing on S3 parallel.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any, TextIO, TypeVar

from sqlalchemy import func, select

from registry.content import distribution, paths
from registry.content.import_report import (
    CORRUPT_MANIFEST,
    DANGLING_LINK,
    DANGLING_TAG,
    INVALID_NAME,
    MISSING_BLOB,
    MISSING_CHILD,
    MISSING_MANIFEST,
    UNSUPPORTED_MANIFEST,
    Progress,
    Summary,
)
from registry.content.manifests import manifest_row, required
from registry.db import import_queries as q
from registry.db.engine import Database
from registry.db.models import blobs
from registry.db.sessions import Writer
from registry.digests import Digest
from registry.errors import RegistryError
from registry.manifests import MANIFEST_MAX_SIZE, ParsedManifest, parse_manifest
from registry.names import is_valid_name, is_valid_tag
from storage_backends.base import StorageBackend
from storage_backends.errors import PathNotFound

_T = TypeVar("_T")
_BLOB_TOTALS = select(func.count(), func.coalesce(func.sum(blobs.c.size), 0)).select_from(blobs)
Loaded = tuple[Digest, bytes, ParsedManifest]


async def batched(items: AsyncIterator[_T], size: int) -> AsyncIterator[list[_T]]:
    batch: list[_T] = []
    async for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class Importer:
    def __init__(
        self,
        backend: StorageBackend,
        db: Database,
        *,
        workers: int = 8,
        batch: int = 200,
        storage_calls: int = 32,
        progress: TextIO | None = None,
    ) -> None:
        self.backend = backend
        self.db = db
        self.workers = workers
        self.batch = batch
        self.summary = Summary()
        self.progress = None if progress is None else Progress(self.summary, progress)
        self._calls = asyncio.Semaphore(storage_calls)  # storage requests in flight, whatever the workers

    async def run(self) -> Summary:
        names: asyncio.Queue[str | None] = asyncio.Queue(maxsize=self.workers * 2)  # the walk waits for the workers

        async def feed() -> None:
            async for name in distribution.repositories(self.backend):
                await names.put(name)
            for _ in range(self.workers):
                await names.put(None)

        async def work() -> None:
            while (name := await names.get()) is not None:
                await self.repository(name)

        async with asyncio.TaskGroup() as group:
            group.create_task(feed())
            for _ in range(self.workers):
                group.create_task(work())
        await self._count_blobs()
        if self.progress is not None:
            self.progress.done()
        return self.summary

    async def repository(self, name: str) -> None:
        if not is_valid_name(name):
            self.summary.skip(INVALID_NAME, name)
            return
        if self.progress is not None:
            self.progress.repository(name)
        repo_id = await self.db.write(lambda session: q.ensure_repository(session, name))
        self.summary.repositories += 1
        await self._layers(name, repo_id)
        await self._manifests(name, repo_id)
        await self._references(name, repo_id)
        await self._tags(name, repo_id)

    # blob links

    async def _layers(self, name: str, repo_id: int) -> None:
        links = distribution.linked_digests(self.backend, paths.layer_links_dir(name))
        async for batch in batched(links, self.batch):
            sizes = await self._sizes(batch)
            for digest in batch:
                if str(digest) not in sizes:
                    self.summary.skip(DANGLING_LINK, f"{name}@{digest}")
            await self.db.write(partial(q.link_blobs, repo_id=repo_id, sizes=sizes))
            self.summary.blob_links += len(sizes)
            self._tick()

    async def _sizes(self, digests: Iterable[Digest]) -> dict[str, int]:
        """The size of each blob among ``digests`` that storage holds: from its row, else from storage."""
        wanted = {str(digest): digest for digest in digests}
        async with self.db.read() as session:
            sizes = await q.blob_sizes(session, wanted)
        unknown = [digest for key, digest in wanted.items() if key not in sizes]
        stats = await asyncio.gather(*(self._call(self._stat, digest) for digest in unknown))
        sizes.update((str(digest), size) for digest, size in zip(unknown, stats, strict=True) if size is not None)
        return sizes

    async def _stat(self, digest: Digest) -> int | None:
        try:
            info = await self.backend.stat(paths.blob_path(digest))
        except PathNotFound:
            return None
        return None if info.is_dir else info.size

    async def _call(self, function: Callable[[_T], Awaitable[Any]], argument: _T) -> Any:
        async with self._calls:
            return await function(argument)

    # manifests

    async def _manifests(self, name: str, repo_id: int) -> None:
        revisions = distribution.linked_digests(self.backend, paths.manifest_revisions_dir(name))
        async for batch in batched(revisions, self.batch):
            async with self.db.read() as session:
                known = await q.manifest_ids(session, repo_id, [str(digest) for digest in batch])
            self.summary.manifests += len(known)
            todo = [digest for digest in batch if str(digest) not in known]
            found = await asyncio.gather(*(self._call(self._load, (name, digest)) for digest in todo))
            await self._store(name, repo_id, [item for item in found if item is not None])
            self._tick()

    async def _load(self, item: tuple[str, Digest]) -> Loaded | None:
        name, digest = item
        body = await distribution.read_capped(self.backend, paths.blob_path(digest))
        if body is None:
            self.summary.skip(MISSING_MANIFEST, f"{name}@{digest}")
            return None
        if len(body) > MANIFEST_MAX_SIZE or Digest.of(body, digest.algorithm) != digest:
            self.summary.skip(CORRUPT_MANIFEST, f"{name}@{digest}")
            return None
        try:
            return digest, body, parse_manifest(body, None)
        except RegistryError as exc:
            schema1 = "schema1" in str(exc.detail)
            self.summary.skip(UNSUPPORTED_MANIFEST if schema1 else CORRUPT_MANIFEST, f"{name}@{digest}")
            return None

    async def _store(self, name: str, repo_id: int, loaded: list[Loaded]) -> None:
        """The manifests whose blobs storage holds, with those blobs linked; the others are skipped."""
        needed = {d.digest for _, _, parsed in loaded for d in parsed.blob_references if required(d)}
        sizes = await self._sizes(Digest.parse(digest) for digest in needed)
        complete: list[tuple[Loaded, list[str]]] = []
        for item in loaded:
            wanted = sorted({d.digest for d in item[2].blob_references if required(d)})
            missing = [digest for digest in wanted if digest not in sizes]
            if missing:
                self.summary.skip(MISSING_BLOB, f"{name}@{item[0]} ({missing[0]})")
            else:
                complete.append((item, wanted))

        async def store(session: Writer) -> None:
            await q.link_blobs(session, repo_id, {digest: sizes[digest] for digest in needed if digest in sizes})
            for (digest, body, parsed), wanted in complete:
                await q.insert_manifest(session, manifest_row(repo_id, str(digest), body, parsed), wanted, [])

        if complete or sizes:
            await self.db.write(store)
        self.summary.manifests += len(complete)

    async def _references(self, name: str, repo_id: int) -> None:
        """Each index's children, once every manifest of the repository is in (an index may name a later one)."""
        after = 0
        while True:
            async with self.db.read() as session:
                page = await q.indexes(session, repo_id, after, self.batch)
            if not page:
                return
            after = page[-1].id
            children = {row.id: [d.digest for d in parse_manifest(row.payload, None).manifests] for row in page}
            async with self.db.read() as session:
                ids = await q.manifest_ids(session, repo_id, {d for digests in children.values() for d in digests})
            for row in page:
                for digest in children[row.id]:
                    if digest not in ids:
                        self.summary.skip(MISSING_CHILD, f"{name}@{row.digest} ({digest})")
            found = {parent: {ids[d] for d in digests if d in ids} for parent, digests in children.items()}
            await self.db.write(partial(_add_references, found=found))

    # tags

    async def _tags(self, name: str, repo_id: int) -> None:
        async for batch in batched(distribution.tag_links(self.backend, name), self.batch):
            valid = [link for link in batch if is_valid_tag(link.tag)]
            for link in batch:
                if link not in valid:
                    self.summary.skip(INVALID_NAME, f"{name}:{link.tag}")
            targets = await asyncio.gather(*(self._call(self._read_link, link.path) for link in valid))
            async with self.db.read() as session:
                ids = await q.manifest_ids(session, repo_id, [str(digest) for digest in targets if digest])
            rows = []
            for link, digest in zip(valid, targets, strict=True):
                if digest is None or str(digest) not in ids:
                    self.summary.skip(DANGLING_TAG, f"{name}:{link.tag} ({digest or 'no link'})")
                    continue
                rows.append((link.tag, ids[str(digest)], datetime.fromtimestamp(link.mtime, UTC)))
            await self.db.write(partial(q.upsert_tags, repo_id=repo_id, found=rows))
            self.summary.tags += len(rows)
            self._tick()

    async def _read_link(self, path: str) -> Digest | None:
        return await distribution.read_link(self.backend, path)

    async def _count_blobs(self) -> None:
        async with self.db.read() as session:
            row = (await session.execute(_BLOB_TOTALS)).first()
        self.summary.blobs, self.summary.bytes = (int(row[0]), int(row[1])) if row is not None else (0, 0)

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress.tick()


async def _add_references(session: Writer, found: dict[int, set[int]]) -> None:
    for parent, children in found.items():
        await q.add_references(session, parent, children)
