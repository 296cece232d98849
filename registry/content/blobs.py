"""Blobs as a repository sees them: stored once per digest, visible only through the repository's link."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Collection
from datetime import datetime, timedelta
from functools import partial
from typing import BinaryIO

from registry.config import GcConfig
from registry.content import paths
from registry.db import queries, reviews
from registry.db.engine import Database
from registry.db.models import utcnow
from registry.db.sessions import Writer
from registry.digests import Digest
from registry.errors import ErrorCode
from registry.events.envelope import BLOB_MEDIA_TYPE
from registry.events.sink import EventSink, disabled
from registry.gc.deletion import TOMBSTONE_POLL, TOMBSTONE_STALE, finish_deletion
from storage_backends import LocalFiles, PathNotFound, StorageBackend

SMALL_CACHE_BYTES = 32 * 1024 * 1024
SMALL_CACHE_ITEM = 64 * 1024
log = logging.getLogger("registry.gc")


class BlobStore:
    def __init__(
        self, backend: StorageBackend, db: Database, gc: GcConfig | None = None, events: EventSink | None = None
    ) -> None:
        self.backend = backend
        self.db = db
        self.gc = gc or GcConfig()
        self.events = events or disabled()  # uploads report through it too
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

    async def open_local(self, digest: Digest) -> BinaryIO | None:
        """The blob's file, when storage is on this machine (for sendfile); None otherwise."""
        if not isinstance(self.backend, LocalFiles):
            return None
        return await self.backend.open_file(paths.blob_path(digest))

    async def redirect_url(self, digest: Digest, method: str) -> str | None:
        if not self.backend.redirects:
            return None
        return await self.backend.redirect_url(paths.blob_path(digest), method)

    async def mount(
        self, repo: str, digest: Digest, sources: Collection[str] | None, origin: str | None = None
    ) -> int | None:
        """Link a blob that one of ``sources`` (None: any repository) has into ``repo``; its size, or None.
        ``origin``: the repository the client named (``from``), for the mount's event."""
        mounted = self.events.blob_mounting(repo, str(digest), origin)

        async def link(session: Writer) -> int | None:
            repo_id = await queries.ensure_repository(session, repo)  # lock order: the repository, then the blob
            size = await queries.linked_anywhere_size(session, str(digest), sources)
            if size is None or not await reviews.renew_lease(session, str(digest), self._lease_end()):
                return None  # not there, or its row was collected meanwhile: the client uploads it
            await queries.link_blob(session, repo_id, str(digest))
            await self.events.record(session, mounted(size))
            return size

        return await self.db.write(link)

    async def touch(self, digest: Digest) -> None:
        """Renew the lease of a blob a client asked about (HEAD: it may name it in a manifest soon), when less than
        half of one is left: at most one write per blob per half lease."""
        now = utcnow()
        async with self.db.read() as session:
            due = await reviews.lease_needs_renewal(session, str(digest), now + timedelta(seconds=self.gc.lease / 2))
        if due:
            until = self._lease_end()
            await self.db.write(lambda s: reviews.renew_lease(s, str(digest), until), durable=False)

    async def claim(self, digest: Digest, size: int) -> None:
        """The blob's row with a fresh lease, made before its bytes are relied on (an upload moves them into place
        after this): no collector deletes a leased blob, and a deletion already under way is waited for first."""
        while True:
            now, until = utcnow(), self._lease_end()
            try:
                claim = partial(reviews.claim_blob, digest=str(digest), size=size, now=now, until=until)
                await self.db.write(claim, durable=False)  # lost in a crash with the upload it was made for
                return
            except reviews.BlobBeingDeleted as deleting:
                if now - deleting.started_at < TOMBSTONE_STALE:
                    await asyncio.sleep(TOMBSTONE_POLL)
                    continue
                log.warning("finishing the deletion of %s left by a collector that stopped", digest)
                await finish_deletion(self.backend, self.db, [str(digest)])

    def _lease_end(self) -> datetime:
        return utcnow() + timedelta(seconds=self.gc.lease)

    def pulled(self, repo: str, digest: Digest, size: int) -> None:
        """Report a blob served (a GET): buffered, never waited for."""
        self.events.pulled("blob", repo, str(digest), BLOB_MEDIA_TYPE, size, "")

    async def unlink(self, repo: str, digest: Digest) -> None:
        deleted = self.events.deleted(repo, digest=str(digest))

        async def unlink(session: Writer) -> bool:
            repo_id = await queries.repository_id(session, repo, lock=True)
            if repo_id is None or not await queries.unlink_blob(session, repo_id, str(digest)):
                return False
            now = utcnow()
            review = now + timedelta(seconds=self.gc.delay)
            await reviews.queue_blobs(session, [str(digest)], "unlinked", review, now)
            await self.events.record(session, deleted)
            return True

        if not await self.db.write(unlink):
            raise ErrorCode.BLOB_UNKNOWN.error({"digest": str(digest)})

    async def put_small(self, data: bytes) -> Digest:
        """Store a small blob whose bytes the registry knows itself (the empty JSON ``{}``), claimed first like an
        upload; linking is the caller's."""
        digest = Digest.of(data)
        await self.claim(digest, len(data))
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
