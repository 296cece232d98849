"""The server's HTTP protocol: writes of one loop turn leave together, big ones at once and in order."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from registry.protocol import COALESCE_LIMIT, ZEROCOPY, CoalescingTransport, RegistryHttpProtocol


class _Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.sent.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str) -> Any:
        return f"extra {name}"


def _wrap() -> tuple[CoalescingTransport, _Transport]:
    real = _Transport()
    return CoalescingTransport(real, asyncio.get_running_loop()), real  # type: ignore[arg-type]


async def test_a_small_response_leaves_in_one_write_at_the_end_of_the_turn() -> None:
    transport, real = _wrap()
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b'{"body": 1}')
    assert real.sent == []
    await asyncio.sleep(0)
    assert real.sent == [b'HTTP/1.1 200 OK\r\n\r\n{"body": 1}']


async def test_a_big_write_goes_at_once_after_what_is_pending() -> None:
    transport, real = _wrap()
    chunk = b"x" * COALESCE_LIMIT
    transport.write(b"head")
    transport.write(chunk)
    assert real.sent == [b"head", chunk]
    await asyncio.sleep(0)
    assert real.sent == [b"head", chunk]


async def test_pending_writes_past_the_limit_leave_without_waiting() -> None:
    transport, real = _wrap()
    half = b"y" * (COALESCE_LIMIT // 2)
    transport.write(half)
    transport.write(half)
    assert real.sent == [half + half]


async def test_close_sends_what_is_pending_first_and_abort_drops_it() -> None:
    transport, real = _wrap()
    transport.write(b"last words")
    transport.close()
    assert (real.sent, real.closed) == ([b"last words"], True)
    transport, real = _wrap()
    transport.write(b"never sent")
    transport.abort()
    await asyncio.sleep(0)
    assert (real.sent, real.aborted) == ([], True)


async def test_everything_else_is_the_real_transport() -> None:
    transport, _ = _wrap()
    assert transport.get_extra_info("peername") == "extra peername"


async def serve(app: Any) -> AsyncIterator[str]:
    """``app`` on a loopback port behind uvicorn with our protocol; its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, http=RegistryHttpProtocol, lifespan="off", log_level="error")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - readiness: uvicorn sets it once the socket listens
            await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


async def test_zerocopysend_sends_a_file_range_with_sendfile(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    (tmp_path / "blob").write_bytes(data)
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope.get("extensions", {}))
        with (tmp_path / "blob").open("rb") as file:
            count = len(data) - 1000
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % count)]})
            await send({"type": ZEROCOPY, "file": file.fileno(), "offset": 1000, "count": count})

    async with contextlib.aclosing(serve(app)) as urls:
        url = await anext(urls)
        async with httpx.AsyncClient() as client:
            for _ in range(2):  # twice on one keep-alive connection: the response ends where it should
                response = await client.get(url)
                assert response.status_code == 200 and response.content == data[1000:]
    assert all(ZEROCOPY in extensions for extensions in seen)
