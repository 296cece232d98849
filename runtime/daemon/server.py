"""One HTTP/1.1 connection on the unix socket, driven with h11: keep-alive, chunked bodies both ways, the hijack.

uvicorn cannot serve the Engine API's attach (its h11 protocol refuses 101 and httptools drops what follows), so
this module parses requests with h11 and writes a hijacked connection's head itself, then hands over the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

import h11

from .http import (
    COMMON_HEADERS,
    READ_SIZE,
    SERVER,
    ApiError,
    Dispatch,
    Hijack,
    RawStream,
    Reply,
    Response,
    Streamed,
    log,
)

MAX_HEAD = 64 << 10


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, dispatch: Dispatch) -> None:
        self.reader = reader
        self.writer = writer
        self.dispatch = dispatch
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)

    async def serve(self) -> None:
        try:
            while await self.one_exchange():
                self.h11.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            await self.bad_request(exc)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await self.writer.wait_closed()

    async def next_event(self) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.reader.read(READ_SIZE)
            self.h11.receive_data(data)

    async def body(self) -> AsyncIterator[bytes]:
        """The request's body; a malformed or cut-short one is the client's 400 (and the connection's end)."""
        while True:
            try:
                event = await self.next_event()
            except h11.RemoteProtocolError as exc:
                raise ApiError(400, f"bad request body: {exc}") from None
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                return
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the client closed the connection within a request body")

    async def one_exchange(self) -> bool:
        """Read a request, answer it; False when the connection is to end."""
        event = await self.next_event()
        if not isinstance(event, h11.Request):
            return False
        body = self.body()
        reply = await self.dispatch(event, body)
        async for _ in body:  # what the handler left unread
            pass
        if event.method == b"HEAD":
            await self.respond(await headers_only(reply), head=True)
        elif isinstance(reply, Hijack):
            await self.hijack(event, reply)
            return False
        elif isinstance(reply, Streamed):
            await self.stream(reply)
        else:
            await self.respond(reply)
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    def send(self, event: h11.Event) -> None:
        data = self.h11.send(event)
        if data:
            self.writer.write(data)

    async def respond(self, reply: Response, head: bool = False) -> None:
        headers = [*COMMON_HEADERS, SERVER, *reply.headers, ("Content-Length", str(len(reply.body)))]
        if reply.content_type:
            headers.append(("Content-Type", reply.content_type))
        if reply.status in (204, 304):
            headers = [h for h in headers if h[0] != "Content-Length"]
        self.send(h11.Response(status_code=reply.status, headers=headers, reason=_reason(reply.status)))
        if reply.body and not head:
            self.send(h11.Data(data=reply.body))
        self.send(h11.EndOfMessage())
        await self.writer.drain()

    async def stream(self, reply: Streamed) -> None:
        headers = [*COMMON_HEADERS, SERVER, ("Content-Type", reply.content_type), ("Transfer-Encoding", "chunked")]
        self.send(h11.Response(status_code=reply.status, headers=headers, reason=_reason(reply.status)))
        await self.writer.drain()
        watcher = asyncio.ensure_future(self.watch_for_close())
        try:
            async for chunk in _until(reply.chunks, watcher):
                if chunk:
                    self.send(h11.Data(data=chunk))
                    await self.writer.drain()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            aclose = getattr(reply.chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        if watcher.cancelled() or not watcher.result():
            self.send(h11.EndOfMessage())
            await self.writer.drain()
        else:
            raise ConnectionError("the client went away during a streamed response")

    async def watch_for_close(self) -> bool:
        """True once the client has closed its side (it gave up on a wait or a follow); data is kept for h11."""
        while True:
            data = await self.reader.read(READ_SIZE)
            if not data:
                return True
            self.h11.receive_data(data)

    async def hijack(self, request: h11.Request, reply: Hijack) -> None:
        upgrade = any(name == b"upgrade" for name, _ in request.headers)
        head = "HTTP/1.1 101 UPGRADED\r\n" if upgrade else "HTTP/1.1 200 OK\r\n"
        headers = [("Content-Type", reply.content_type), *COMMON_HEADERS]
        if upgrade:
            headers += [("Connection", "Upgrade"), ("Upgrade", "tcp")]
        head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        self.writer.write(head.encode())
        await self.writer.drain()
        leftover, _closed = self.h11.trailing_data
        await reply.run(RawStream(bytes(leftover), self.reader, self.writer))

    async def bad_request(self, exc: h11.RemoteProtocolError) -> None:
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = b'{"message":"bad request: ' + str(exc).replace('"', "'").encode() + b'"}\n'
        headers = [*COMMON_HEADERS, ("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        headers.append(("Connection", "close"))
        with contextlib.suppress(h11.LocalProtocolError, ConnectionError):
            self.send(h11.Response(status_code=exc.error_status_hint, headers=headers))
            self.send(h11.Data(data=body))
            self.send(h11.EndOfMessage())
            await self.writer.drain()


async def _until(chunks: AsyncIterator[bytes], watcher: asyncio.Future[bool]) -> AsyncIterator[bytes]:
    """The chunks, until they end or `watcher` finishes first (the client left)."""
    iterator = aiter(chunks)
    while True:
        step: asyncio.Future[bytes] = asyncio.ensure_future(anext(iterator))
        waiting: list[asyncio.Future[Any]] = [step, watcher]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not step.done():
            step.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await step
            log.debug("client went away during a streamed response")
            return
        try:
            chunk = step.result()
        except StopAsyncIteration:
            return
        yield chunk


async def headers_only(reply: Reply) -> Response:
    """HEAD: the status and type a GET would have, no body (a stream is closed unread, a hijack not made)."""
    if isinstance(reply, Response):
        return reply
    if isinstance(reply, Hijack):
        return Response(200, content_type=reply.content_type)
    aclose = getattr(reply.chunks, "aclose", None)
    if aclose is not None:
        await aclose()
    return Response(reply.status, content_type=reply.content_type)


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


async def serve_unix(path: str, dispatch: Dispatch) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await Connection(reader, writer, dispatch).serve()

    return await asyncio.start_unix_server(handle, path=path, limit=MAX_HEAD)
