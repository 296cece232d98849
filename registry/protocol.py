"""uvicorn's httptools protocol, with the writes of one event-loop turn sent together: a small response's head and
body leave in one ``send`` (one packet, one wake-up of the client) instead of two; and, on plain TCP, the ASGI
zero-copy extension (``http.response.zerocopysend``: a file descriptor, an offset and a count), whose bytes go from
the page cache to the socket with sendfile(2), never through Python."""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

ZEROCOPY = "http.response.zerocopysend"
SENDFILE_STALL_MS = 60_000  # a client that takes no byte for this long is gone

# a write this big goes out at once (after what is pending): streamed blob chunks are never copied to be joined
COALESCE_LIMIT = 64 * 1024


class CoalescingTransport:
    """A transport whose small writes wait for the end of the current loop turn, then leave in one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._pending_size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if len(data) >= COALESCE_LIMIT:
            self.flush()
            self._transport.write(data)
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))
        self._pending_size += len(data)
        if self._pending_size >= COALESCE_LIMIT:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending.clear()
            self._pending_size = 0
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._pending_size = 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class RegistryHttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._zerocopy = transport.get_extra_info("sslcontext") is None  # TLS encrypts in user space: no sendfile
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

    def on_headers_complete(self) -> None:
        if self._zerocopy:
            self.scope.setdefault("extensions", {})[ZEROCOPY] = {}
        super().on_headers_complete()
        if self._zerocopy and self.cycle is not None:  # the application task starts at the next turn of the loop
            self.cycle.send = partial(_send, self.cycle, self.cycle.send)  # type: ignore[method-assign]


async def _send(cycle: RequestResponseCycle, send: Callable[[Any], Awaitable[None]], message: Any) -> None:
    """uvicorn's send, plus ``http.response.zerocopysend``: the head has gone out with ``http.response.start``."""
    if message["type"] != ZEROCOPY:
        await send(message)
        return
    transport: Any = cycle.transport
    transport.flush()
    # the head (a few hundred bytes, nearly always written at once) leaves before the body
    while transport.get_write_buffer_size() and not cycle.disconnected:  # noqa: ASYNC110 - no event to wait on
        await asyncio.sleep(0.0005)
    count = int(message["count"])
    try:
        sock = transport.get_extra_info("socket")
        await asyncio.to_thread(_sendfile, sock.fileno(), int(message["file"]), int(message.get("offset", 0)), count)
    except OSError:
        cycle.disconnected = True
        transport.close()
        return
    cycle.expected_content_length -= count
    await send({"type": "http.response.body", "body": b"", "more_body": bool(message.get("more_body", False))})


def _sendfile(sock: int, file: int, offset: int, count: int) -> None:
    """All ``count`` bytes from ``offset``, on a non-blocking socket: poll for room when it is full."""
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    while count:
        try:
            sent = os.sendfile(sock, file, offset, count)
        except BlockingIOError:
            if not poller.poll(SENDFILE_STALL_MS):
                raise TimeoutError("the client took no byte for a minute") from None
            continue
        if sent == 0:
            raise ConnectionResetError("the file ended early, or the client went away")
        offset += sent
        count -= sent
