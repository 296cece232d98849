"""One upstream fetch of a blob, shared by every request that wants it meanwhile (per process).

The fetch writes the upstream's bytes through the upload path (staged, hashed, published only when they match the
digest) and hands each piece to the requests reading along. A request that joins before the first piece is handed
out reads along from the start; one that joins later, or falls more than ``LAG_LIMIT`` bytes behind, waits for the
blob to be stored and reads the rest from storage. The last piece is held back until the digest is verified: a reader
of a corrupt blob never gets every byte it was promised, its body fails instead (the connection is aborted).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

LAG_LIMIT = 8 * 1024 * 1024
_END = b""  # the queue's last item (a piece handed out is never empty)


@dataclass
class _Reader:
    queue: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    live: bool = True
    buffered: int = 0


class BlobFlight:
    def __init__(self) -> None:
        self.size: int | None = None
        self.started = asyncio.Event()  # the upstream answered (``size`` known) or the fetch failed
        self.done = asyncio.Event()
        self.error: BaseException | None = None
        self._readers: list[_Reader] = []
        self._handed = 0
        self._held: bytes | None = None

    async def run(self, fetch: Callable[[BlobFlight], Awaitable[None]]) -> None:
        """Run ``fetch`` (which calls ``begin`` then writes ``tee(upstream)`` to storage) and tell the readers."""
        try:
            await fetch(self)
        except BaseException as exc:
            self._finish(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            if self._held is not None:
                self._hand(self._held)
            self._finish(None)

    def begin(self, size: int | None) -> None:
        self.size = size
        self.started.set()

    async def tee(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            if not chunk:
                continue
            if self._held is not None:
                self._hand(self._held)
            self._held = chunk
            yield chunk

    def _hand(self, chunk: bytes) -> None:
        self._handed += len(chunk)
        for reader in self._readers:
            if not reader.live:
                continue
            if reader.buffered + len(chunk) > LAG_LIMIT:
                reader.live = False  # too slow to read along: it reads the rest from storage
                reader.queue.put_nowait(_END)
                continue
            reader.buffered += len(chunk)
            reader.queue.put_nowait(chunk)

    def _finish(self, error: BaseException | None) -> None:
        self.error = error
        self.size = self._handed if error is None else self.size
        self.started.set()
        self.done.set()
        for reader in self._readers:
            if reader.live:
                reader.queue.put_nowait(_END)

    async def read(self, stored: Callable[[int], AsyncIterator[bytes]]) -> AsyncIterator[bytes]:
        """The blob's bytes for one request: along with the fetch, then (when late or slow) ``stored(offset)``."""
        reader = _Reader(live=self._handed == 0 and not self.done.is_set())
        self._readers.append(reader)
        offset = 0
        try:
            while reader.live:
                chunk = await reader.queue.get()
                if not chunk:
                    break
                reader.buffered -= len(chunk)
                offset += len(chunk)
                yield chunk
            await self.done.wait()
            if self.error is not None:
                raise BlobFlightFailed(self.error)
            if offset < (self.size or 0):
                async for chunk in stored(offset):
                    yield chunk
        finally:
            self._readers.remove(reader)


class BlobFlightFailed(Exception):
    """The shared fetch failed after the response began: the request's body cannot be completed."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"the upstream fetch failed: {cause}")
        self.cause = cause
