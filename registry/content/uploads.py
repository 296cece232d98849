"""Upload sessions: bytes stream into storage, the session's offset lives in SQL, the blob becomes visible only
once its digest is verified.

Any worker or replica can continue or finish any session: the hash of the bytes received so far is saved with the
session's size, in the same row update (registry.content.resumable_hash), and continued by whichever process takes
the next request, so finishing an upload reads none of its bytes back. A state that is missing, damaged, saved for
another session, or that covers another size than the session's (written by a version that did not save it) is not
trusted: the bytes are then hashed again from storage when the upload completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from registry.content import paths, resumable_hash
from registry.content.blobs import BlobStore, is_stored
from registry.db import queries
from registry.db.engine import Database
from registry.db.models import utcnow
from registry.db.sessions import Writer
from registry.digests import Digest
from registry.errors import ErrorCode
from storage_backends import FileWriter, PathNotFound, StorageBackend

# an upload is received, written and hashed in pieces of this size, two at a time (one filling while the last is
# written): 4 MiB pieces cost 10 MiB more peak memory than these for no faster upload (bench/README.md)
WRITE_SIZE = 1024 * 1024
# a request renews its lease on a session every LEASE_SECONDS / 5 while data flows; a crashed one frees it after this
LEASE_SECONDS = 300.0
_HASH_CACHE_LIMIT = 1024


@dataclass
class _Lease:
    """A request's hold on an upload session: its size when claimed, the size the request leaves it at (written
    with the release, in one transaction), and whether the session ended (published or forgotten) meanwhile."""

    db: Database
    upload_id: str
    token: str
    size: int
    hash_state: bytes | None = None  # the hash of the session's bytes, as saved with its size
    left_at: int | None = None
    left_hash_state: bytes | None = None
    ended: bool = False
    renewed: float = field(default_factory=time.monotonic)

    def leave(self, size: int, hash_state: bytes | None) -> None:
        self.left_at, self.left_hash_state = size, hash_state

    async def renew(self) -> None:
        if time.monotonic() - self.renewed > LEASE_SECONDS / 5:
            self.renewed = time.monotonic()
            await self.db.write(lambda s: queries.renew_upload(s, self.upload_id, self.token), durable=False)


@dataclass
class _HashState:
    """The hash of an upload's first ``offset`` bytes, kept while they stream in."""

    algorithm: str
    offset: int
    hasher: resumable_hash.Hasher


class UploadStore:
    def __init__(self, backend: StorageBackend, db: Database, blobs: BlobStore | None = None) -> None:
        self.backend = backend
        self.db = db
        self.blobs = blobs or BlobStore(backend, db)
        self._hashes: dict[str, _HashState] = {}

    async def start(self, repo: str, algorithm: str = "sha256") -> str:
        """A new session whose bytes are hashed with ``algorithm`` as they arrive (``?digest-algorithm=``); the digest
        given when it completes decides what is verified (re-hashed from storage if it names another algorithm)."""
        upload_id = str(uuid.uuid4())
        saved = resumable_hash.saved_state(self._new_hash(upload_id, algorithm).hasher, upload_id.encode())
        await self.db.write(lambda s: queries.create_upload(s, upload_id, repo, saved), durable=False)
        return upload_id

    async def size(self, repo: str, upload_id: str) -> int:
        _check_id(upload_id)
        async with self.db.read() as session:
            size = await queries.upload_size(session, upload_id, repo)
        if size is None:
            raise ErrorCode.BLOB_UPLOAD_UNKNOWN.error({"uuid": upload_id})
        return size

    async def append(
        self, repo: str, upload_id: str, body: AsyncIterator[bytes], start: int | None = None, end: int | None = None
    ) -> int:
        """Append a request body at the session's offset (``start`` must equal it when given, and the body must end
        at ``end``, a ``Content-Range``'s last byte, when given); returns the new size."""
        async with self._lease(repo, upload_id) as lease:
            _check_start(start, lease.size)
            writer = await self._open(upload_id, lease.size)
            try:
                await self._copy(upload_id, body, writer, lease)
            finally:
                await writer.close()
                lease.leave(writer.size, self._saved_hash(upload_id, writer.size))
            _check_end(end, writer.size)
            return writer.size

    async def complete(
        self,
        repo: str,
        upload_id: str,
        digest: Digest,
        body: AsyncIterator[bytes],
        start: int | None = None,
        end: int | None = None,
    ) -> int:
        """Write the last bytes (at ``start``, ending at ``end``, when given), verify the digest, and make the blob
        visible in ``repo``."""
        async with self._lease(repo, upload_id) as lease:
            _check_start(start, lease.size)
            writer = await self._open(upload_id, lease.size)
            try:
                await self._copy(upload_id, body, writer, lease)
                _check_end(end, writer.size)
            except BaseException:
                await writer.close()
                lease.leave(writer.size, self._saved_hash(upload_id, writer.size))
                raise
            size = await self._seal(repo, upload_id, digest, writer, self._forget)
            lease.ended = True  # the session's row went with the publishing transaction: nothing to release
            return size

    async def push(self, repo: str, digest: Digest, body: AsyncIterator[bytes]) -> int:
        """A monolithic push (``POST ?digest=`` with the blob as body): no session row, since no other request can
        continue it; its bytes stage under a fresh upload id (the purge sweeps them if this process dies)."""
        upload_id = str(uuid.uuid4())
        self._new_hash(upload_id, digest.algorithm)
        writer = await self.backend.writer(paths.upload_data_path(upload_id))
        try:
            await self._copy(upload_id, body, writer)
        except BaseException:
            self._hashes.pop(upload_id, None)
            await writer.cancel()
            await self._remove_data(upload_id)
            raise
        return await self._seal(repo, upload_id, digest, writer, self._remove_data)

    async def _seal(
        self, repo: str, upload_id: str, digest: Digest, writer: FileWriter, discard: Callable[[str], Awaitable[None]]
    ) -> int:
        """Commit the bytes and publish them when they hash to ``digest``; else ``discard`` the upload and refuse it."""
        await writer.commit()
        actual = await self._digest(upload_id, writer.size, digest.algorithm)
        if actual != str(digest):
            await discard(upload_id)
            raise ErrorCode.DIGEST_INVALID.error({"expected": str(digest), "actual": actual})
        await self._publish(repo, upload_id, digest, writer.size)
        return writer.size

    @asynccontextmanager
    async def _lease(self, repo: str, upload_id: str) -> AsyncIterator[_Lease]:
        """Only one request at a time writes to a session, whichever worker or replica it reaches: a second one
        gets 416 and may ask for the session's status. A lease left by a crashed process goes stale. The release
        records the session's new size in the same transaction, and is skipped once the session has ended."""
        _check_id(upload_id)
        stale_before = datetime.now(UTC) - timedelta(seconds=LEASE_SECONDS)
        token = str(uuid.uuid4())
        claimed = await self.db.write(
            lambda s: queries.claim_upload(s, upload_id, repo, token, stale_before), durable=False
        )
        if claimed is None:
            size = await self.size(repo, upload_id)  # 404 when there is no such session; else it is busy
            raise ErrorCode.RANGE_INVALID.error(
                {"reason": "another request is writing to this upload session"}, headers={"Range": upload_range(size)}
            )
        lease = _Lease(self.db, upload_id, token, *claimed)
        try:
            yield lease
        finally:
            if not lease.ended:
                await self.db.write(lambda s: self._release(s, lease), durable=False)

    @staticmethod
    async def _release(session: Writer, lease: _Lease) -> None:
        await queries.release_upload(session, lease.upload_id, lease.token, lease.left_at, lease.left_hash_state)

    async def cancel(self, repo: str, upload_id: str) -> None:
        await self.size(repo, upload_id)
        await self._forget(upload_id)

    async def _forget(self, upload_id: str) -> None:
        self._hashes.pop(upload_id, None)
        await self.db.write(lambda s: queries.delete_upload(s, upload_id))
        await self._remove_data(upload_id)

    async def purge(self, updated_before: datetime) -> list[str]:
        """Forget sessions untouched since ``updated_before`` and delete their data (distribution's upload purging),
        then data in storage that no session owns (a process died between the two), if as old."""
        stale = await self.db.write(lambda s: queries.delete_stale_uploads(s, updated_before))
        for upload_id in stale:
            self._hashes.pop(upload_id, None)
            await self._remove_data(upload_id)
        return stale + await self._purge_orphans(updated_before)

    async def _purge_orphans(self, updated_before: datetime) -> list[str]:
        try:
            found = [path.rsplit("/", 1)[-1] for path in await self.backend.list(paths.uploads_root())]
        except PathNotFound:
            return []
        async with self.db.read() as session:
            known = await queries.known_uploads(session, found)
        orphans = []
        for upload_id in set(found) - known:
            with contextlib.suppress(PathNotFound):
                info = await self.backend.stat(paths.upload_dir(upload_id))
                if info.mtime < updated_before.timestamp():
                    await self._remove_data(upload_id)
                    orphans.append(upload_id)
        return orphans

    async def _open(self, upload_id: str, size: int) -> FileWriter:
        writer = await self.backend.writer(paths.upload_data_path(upload_id), append=size > 0)
        if writer.size != size:
            # storage holds bytes the database never acknowledged (a crash mid-request): they cannot be trusted
            await writer.close()
            raise ErrorCode.BLOB_UPLOAD_INVALID.error({"reason": "upload data out of step, restart the upload"})
        return writer

    async def _copy(
        self, upload_id: str, body: AsyncIterator[bytes], writer: FileWriter, lease: _Lease | None = None
    ) -> None:
        """Stream the body into storage in WRITE_SIZE pieces; each piece is written and hashed in threads while the
        event loop receives the next one."""
        state = self._hash_state(upload_id, writer.size, lease.hash_state if lease else None)
        renew = lease.renew if lease else _no_renewal
        pending: asyncio.Future[None] | None = None
        chunks: list[bytes] = []
        buffered = 0
        try:
            async for chunk in body:
                chunks.append(chunk)
                buffered += len(chunk)
                if buffered >= WRITE_SIZE:
                    if pending is not None:
                        await pending
                    pending = asyncio.ensure_future(_write(writer, state, b"".join(chunks)))
                    chunks, buffered = [], 0
                    await renew()
        finally:
            if pending is not None:
                await pending
            if chunks:
                await _write(writer, state, b"".join(chunks))

    def _new_hash(self, upload_id: str, algorithm: str) -> _HashState:
        if len(self._hashes) >= _HASH_CACHE_LIMIT:
            self._hashes.pop(next(iter(self._hashes)))
        state = self._hashes[upload_id] = _HashState(algorithm, 0, resumable_hash.new(algorithm))
        return state

    def _hash_state(self, upload_id: str, offset: int, saved: bytes | None) -> _HashState | None:
        """The hash to extend with bytes written at ``offset``: this process's own when it saw every byte before
        it, else the one saved with the session at that size; none when neither covers exactly those bytes (the
        data is then hashed again from storage), and sha256 for a session begun without a saved hash."""
        state = self._hashes.get(upload_id)
        if state is not None and state.offset == offset:
            return state
        self._hashes.pop(upload_id, None)
        resumed = resumable_hash.resume(saved, offset, upload_id.encode())
        if resumed is not None:
            state = self._hashes[upload_id] = _HashState(resumed.name, offset, resumed)
            return state
        return self._new_hash(upload_id, "sha256") if offset == 0 and saved is None else None

    def _saved_hash(self, upload_id: str, size: int) -> bytes | None:
        """The hash of the session's ``size`` bytes to save with it, when this process holds one."""
        state = self._hashes.get(upload_id)
        if state is None or state.offset != size:
            return None
        return resumable_hash.saved_state(state.hasher, upload_id.encode())

    async def _digest(self, upload_id: str, size: int, algorithm: str) -> str:
        state = self._hashes.pop(upload_id, None)
        if state is not None and state.algorithm == algorithm and state.offset == size:
            return f"{algorithm}:{state.hasher.hexdigest()}"
        hasher = resumable_hash.new(algorithm)
        async for chunk in self.backend.reader(paths.upload_data_path(upload_id)):
            await asyncio.to_thread(hasher.update, chunk)
        return f"{algorithm}:{hasher.hexdigest()}"

    async def _publish(self, repo: str, upload_id: str, digest: Digest, size: int) -> None:
        """The blob's row and lease first, then its bytes, then the link: a collector never sees bytes it could take
        from under a link, and never deletes bytes an upload has just relied on."""
        await self.blobs.claim(digest, size)
        source, dest = paths.upload_data_path(upload_id), paths.blob_path(digest)
        if await is_stored(self.backend, digest):
            await self.backend.delete(source)
        else:
            await self.backend.move(source, dest)
        now = utcnow()
        review = now + timedelta(seconds=self.blobs.gc.delay)
        events = self.blobs.events
        pushed = events.blob_pushed(repo, str(digest), size)

        async def publish(session: Writer) -> bool:
            published = await queries.publish_upload(session, upload_id, repo, str(digest), review, now)
            if published:
                await events.record(session, pushed)
            return published

        if not await self.db.write(publish):  # the lease ran out, a collector took the blob: the client uploads again
            raise ErrorCode.BLOB_UPLOAD_INVALID.error({"reason": "the blob was collected while it was published"})
        await self._remove_data(upload_id)

    async def _remove_data(self, upload_id: str) -> None:
        with contextlib.suppress(PathNotFound):
            await self.backend.delete(paths.upload_dir(upload_id))


async def _no_renewal() -> None:
    return None


async def _write(writer: FileWriter, state: _HashState | None, data: bytes) -> None:
    if state is None:
        await writer.write(data)
        return
    try:
        await asyncio.gather(writer.write(data), asyncio.to_thread(state.hasher.update, data))
    except BaseException:
        state.offset = -1  # the hash may cover bytes the storage lacks: never trust it again
        raise
    state.offset += len(data)


def _check_start(start: int | None, size: int) -> None:
    if start is not None and start != size:
        raise ErrorCode.RANGE_INVALID.error(
            {"expected_start": size, "start": start}, headers={"Range": upload_range(size)}
        )


def _check_end(end: int | None, size: int) -> None:
    """spec.md "Pushing a blob in chunks": the session's end of range matches the end of the request's
    ``Content-Range``; a body that ended elsewhere is a 416 whose ``Range`` says what the session holds now."""
    if end is not None and end != size - 1:
        raise ErrorCode.RANGE_INVALID.error(
            {"expected_end": end, "end": size - 1}, headers={"Range": upload_range(size)}
        )


def upload_range(size: int) -> str:
    """An upload session's ``Range`` header: the bytes received, ``0-0`` for none (no ``bytes=`` prefix)."""
    return f"0-{max(size - 1, 0)}"


def _check_id(upload_id: str) -> None:
    if not _is_uuid(upload_id):
        raise ErrorCode.BLOB_UPLOAD_UNKNOWN.error({"uuid": upload_id})


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
