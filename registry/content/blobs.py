"""Blobs as a repository sees them: stored once per digest, visible only through the repository's link."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Collection

from registry.content import paths
from registry.db import queries
from registry.db.engine import Database
from registry.db.sessions import Writer
from registry.digests import Digest
from registry.errors import ErrorCode
from storage_backends import PathNotFound, StorageBackend

SMALL_CACHE_BYTES = 32 * 1024 * 1024
SMALL_CACHE_ITEM = 64 * 1024


class BlobStore:
    def __init__(self, backend: StorageBackend, db: Database) -> None:
        self.backend = backend
        self.db = db
        # a digest's bytes never change, so small ones (configs, tiny layers, signatures) are kept in memory; whether
        # a repository may see them is still asked of SQL on every request, so no replica serves what was deleted
        self._small: OrderedDict[Digest, bytes] = OrderedDict()
        self._small_bytes = 0

    async def size(self, repo: str, digest: Digest) -> int:
        async with self.db.read() as session:
            size = await queries.linked_blob_size(session, repo, str(digest))
        if size is None:
            raise ErrorCode.BLOB_UNKNOWN.error({"digest": str(digest)})
        return size

    def read(self, digest: Digest, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self.backend.reader(paths.blob_path(digest), offset, length)

    async def read_small(self, digest: Digest) -> bytes:
        data = self._small.get(digest)
        if data is not None:
            self._small.move_to_end(digest)
            return data
        data = await self.backend.get_content(paths.blob_path(digest))
        if len(data) <= SMALL_CACHE_ITEM and digest not in self._small:
            self._small[digest] = data
            self._small_bytes += len(data)
            while self._small_bytes > SMALL_CACHE_BYTES:
                self._small_bytes -= len(self._small.popitem(last=False)[1])
        return data

    async def redirect_url(self, digest: Digest, method: str) -> str | None:
        if not self.backend.redirects:
            return None
        return await self.backend.redirect_url(paths.blob_path(digest), method)

    async def mount(self, repo: str, digest: Digest, sources: Collection[str] | None) -> int | None:
        """Link a blob that one of ``sources`` (None: any repository) has into ``repo``; its size, or None."""

        async def link(session: Writer) -> int | None:
            size = await queries.linked_anywhere_size(session, str(digest), sources)
            if size is not None:
                await queries.link_blob(session, await queries.ensure_repository(session, repo), str(digest))
            return size

        return await self.db.write(link)

    async def unlink(self, repo: str, digest: Digest) -> None:
        async def unlink(session: Writer) -> bool:
            repo_id = await queries.repository_id(session, repo, lock=True)
            return repo_id is not None and await queries.unlink_blob(session, repo_id, str(digest))

        if not await self.db.write(unlink):
            raise ErrorCode.BLOB_UNKNOWN.error({"digest": str(digest)})

    async def put_small(self, data: bytes) -> Digest:
        """Store a small blob whose bytes the registry knows itself (the empty JSON ``{}``); linking is the caller's."""
        digest = Digest.of(data)
        if not await is_stored(self.backend, digest):
            await self.backend.put_content(paths.blob_path(digest), data)
        return digest


async def is_stored(backend: StorageBackend, digest: Digest) -> bool:
    """Whether a blob's bytes are in storage (whoever links them): a second copy is never written."""
    try:
        await backend.stat(paths.blob_path(digest))
    except PathNotFound:
        return False
    return True
