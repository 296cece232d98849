"""The pull-through cache: what the handlers ask when a repository mirrors an upstream (``ProxyConfig.find``).

Manifests by digest and blobs never change: once kept they are served from here for good (the collector may still
take them; they are fetched again then). A tag is served from here for ``ttl`` after the upstream last confirmed it,
then revalidated with a HEAD (which Docker Hub does not count against its rate limit); only a moved tag costs a GET.
Stale-if-error: when the upstream fails, whatever is kept is served; the client gets the upstream's error only for
what was never kept. Concurrent requests for one manifest or one blob of a repository share one upstream fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import httpx

from registry.content.manifests import ManifestStore, StoredManifest
from registry.content.mirrored import MirroredContent
from registry.content.uploads import UploadStore
from registry.digests import Digest, looks_like_digest
from registry.errors import ErrorCode, RegistryError
from registry.names import is_valid_tag
from registry.proxy.config import ProxyConfig
from registry.proxy.flight import BlobFlight
from registry.proxy.upstream import Found, UpstreamClient, UpstreamError

log = logging.getLogger("registry.proxy")
_T = TypeVar("_T")


class PullThrough:
    def __init__(
        self,
        config: ProxyConfig,
        manifests: ManifestStore,
        uploads: UploadStore,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.manifests = manifests
        self.uploads = uploads
        self.blobs = uploads.blobs
        self.mirrored = MirroredContent(manifests.db, uploads.blobs)
        self.clients = {upstream.prefix: UpstreamClient(upstream, transport) for upstream in config.upstreams}
        self._checked: dict[tuple[str, str], float] = {}  # (repository, tag) -> when the upstream last confirmed it
        self._shared: dict[tuple[str, str], asyncio.Task[StoredManifest]] = {}
        self._flights: dict[tuple[str, str], BlobFlight] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def route(self, repo: str) -> tuple[UpstreamClient, str] | None:
        """The upstream's client and its name for a repository this registry mirrors; None for a local one."""
        found = self.config.find(repo)
        return None if found is None else (self.clients[found[0].prefix], found[1])

    def accepts_pushes(self, repo: str) -> bool:
        found = self.config.find(repo)
        return found is None or found[0].pushes

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        for client in self.clients.values():
            await client.close()

    # --- manifests ---

    async def manifest(self, repo: str, reference: str) -> StoredManifest:
        route = self.route(repo)
        if route is None:
            return await self.manifests.get(repo, reference)
        key = (repo, reference)
        task = self._shared.get(key)
        if task is None:
            task = self._shared[key] = asyncio.ensure_future(self._manifest(repo, reference, *route))
            task.add_done_callback(lambda _: self._shared.pop(key, None))
        return await asyncio.shield(task)

    async def _manifest(self, repo: str, reference: str, client: UpstreamClient, remote: str) -> StoredManifest:
        if looks_like_digest(reference):
            return await self._by_digest(repo, Digest.parse(reference), client, remote)
        if not is_valid_tag(reference):
            raise ErrorCode.MANIFEST_UNKNOWN.error({"reference": reference})
        cached = await self._kept(repo, reference)
        if cached is not None and time.monotonic() - self._checked.get((repo, reference), -1e18) < client.upstream.ttl:
            return cached
        try:
            found = await self._revalidate(repo, reference, cached, client, remote)
        except (UpstreamError, RegistryError) as exc:
            if cached is None:
                raise _client_error(exc) from None
            log.warning("serving %s:%s from the cache, the upstream failed: %s", repo, reference, exc)
            return cached
        self._checked[(repo, reference)] = time.monotonic()
        return found

    async def _revalidate(
        self, repo: str, tag: str, cached: StoredManifest | None, client: UpstreamClient, remote: str
    ) -> StoredManifest:
        """The tag as the upstream has it now: a HEAD, and a GET only when it names a manifest not kept here."""
        digest = _digest(await client.head_manifest(remote, tag))
        if cached is not None and digest is not None and cached.digest == str(digest):
            return cached
        kept = await self._kept(repo, str(digest)) if digest is not None else None
        if kept is not None:
            return await self.mirrored.store_manifest(repo, kept.payload, kept.media_type, tag)
        found = await client.get_manifest(remote, str(digest) if digest is not None else tag)
        _verify(found.body, digest or _digest(found))
        return await self.mirrored.store_manifest(repo, found.body, found.media_type, tag)

    async def _by_digest(self, repo: str, digest: Digest, client: UpstreamClient, remote: str) -> StoredManifest:
        kept = await self._kept(repo, str(digest))
        if kept is not None:
            return kept
        try:
            found = await client.get_manifest(remote, str(digest))
        except UpstreamError as exc:
            raise exc.error from None
        _verify(found.body, digest)
        return await self.mirrored.store_manifest(repo, found.body, found.media_type, None)

    async def _kept(self, repo: str, reference: str) -> StoredManifest | None:
        try:
            return await self.manifests.get(repo, reference)
        except RegistryError as exc:
            if exc.code is not ErrorCode.MANIFEST_UNKNOWN:
                raise
            return None

    # --- blobs ---

    async def blob_size(self, repo: str, digest: Digest) -> int:
        """A HEAD of a blob not kept here: the upstream's answer, nothing fetched."""
        client, remote = self._route(repo)
        try:
            found = await client.head_blob(remote, str(digest))
        except UpstreamError as exc:
            raise exc.error from None
        if found.size is None:
            raise ErrorCode.UNAVAILABLE.error({"reason": "the upstream gave no size"}, status=502)
        return found.size

    async def blob(self, repo: str, digest: Digest) -> tuple[int | None, AsyncIterator[bytes]]:
        """A blob not kept here, fetched once for every request that wants it meanwhile: its size (when the upstream
        said) and this request's bytes. The fetch's errors before the first byte are raised here."""
        flight = self._flight(repo, digest)
        await flight.started.wait()
        if flight.error is not None:
            raise _client_error(flight.error)
        return flight.size, flight.read(lambda offset: self.blobs.read(digest, offset))

    async def keep_blob(self, repo: str, digest: Digest) -> None:
        """Fetch a blob not kept here and wait until it is (a range request is then served from storage)."""
        flight = self._flight(repo, digest)
        await flight.done.wait()
        if flight.error is not None:
            raise _client_error(flight.error)

    def _flight(self, repo: str, digest: Digest) -> BlobFlight:
        key = (repo, str(digest))
        flight = self._flights.get(key)
        if flight is None:
            client, remote = self._route(repo)
            flight = self._flights[key] = BlobFlight()
            fetch = self._fetch_blob(client, remote, repo, digest)
            self._spawn(self._fly(key, flight, fetch))
        return flight

    async def _fly(
        self, key: tuple[str, str], flight: BlobFlight, fetch: Callable[[BlobFlight], Awaitable[None]]
    ) -> None:
        try:
            await flight.run(fetch)
            if flight.error is not None:
                log.warning("fetching %s from the upstream failed: %s", key, flight.error)
        finally:
            self._flights.pop(key, None)

    def _fetch_blob(
        self, client: UpstreamClient, remote: str, repo: str, digest: Digest
    ) -> Callable[[BlobFlight], Awaitable[None]]:
        async def fetch(flight: BlobFlight) -> None:
            async with client.blob(remote, str(digest)) as (found, chunks):
                flight.begin(found.size)
                await self.uploads.push(repo, digest, flight.tee(chunks))
            await self.mirrored.blob_arrived(repo, digest)

        return fetch

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _route(self, repo: str) -> tuple[UpstreamClient, str]:
        route = self.route(repo)
        if route is None:
            raise ErrorCode.BLOB_UNKNOWN.error({"name": repo})
        return route


def _digest(found: Found) -> Digest | None:
    try:
        return Digest.parse(found.digest) if found.digest else None
    except RegistryError:
        return None  # not a digest we know: the bytes decide


def _verify(body: bytes, digest: Digest | None) -> None:
    if digest is not None and Digest.of(body, digest.algorithm) != digest:
        raise _corrupt(str(digest))


def _corrupt(digest: str) -> RegistryError:
    detail = {"reason": "the upstream sent content that does not match its digest", "digest": digest}
    return ErrorCode.UNAVAILABLE.error(detail, status=502, message="bad answer from the upstream registry")


def _client_error(exc: BaseException) -> BaseException:
    """What the client is told of an upstream failure: the upstream's own error, or a 502 for corrupt content."""
    if isinstance(exc, UpstreamError):
        return exc.error
    if isinstance(exc, RegistryError) and exc.code is ErrorCode.DIGEST_INVALID:
        return _corrupt(str(exc.detail.get("expected")) if isinstance(exc.detail, dict) else "")
    return exc
