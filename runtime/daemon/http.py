"""The daemon's HTTP interface: what a route handler receives and returns (server.py serves it, router.py routes).

The interface for route modules (``runtime/daemon/images.py``, ``containers.py``, ``system.py``)::

    from runtime.daemon.http import ApiError, Hijack, Request, Response, Streamed, json_response, empty
    from runtime.daemon.router import Route

    async def tag(request: Request) -> Response | Streamed | Hijack:
        name = request.params["name"]              # path parameters, URL-decoded
        repo = request.query.get("repo")           # last value, or None; .getall(), .flag() for 1/true, .int()
        auth = request.headers.get("x-registry-auth")  # header names are lower case
        store = request.context.store              # the runtime Store; .settings the runtime Settings
        await asyncio.to_thread(blocking_work)     # store, pull and push code blocks: keep it off the event loop
        raise ApiError(404, f"No such image: {name}")  # written as {"message": "..."} with that status
        return empty(201)

    ROUTES = [Route("POST", "/images/{name:path}/tag", tag)]

Request
    ``method``, ``path`` (without the ``/v1.NN`` prefix), ``api_version`` ("1.41", or None when unversioned),
    ``params``, ``query``, ``headers``, ``context``. The body: ``async for chunk in request.stream()`` (chunked
    request bodies arrive de-chunked), or ``await request.body()`` (capped), or ``await request.json()`` (400
    ``{"message"}`` on bad JSON; an empty body is None). A body a handler does not read is drained for it.
Responses
    ``json_response(obj, status=200)``; ``empty(status=204)`` (also 201, 304); ``Response(status, body,
    content_type)`` for anything else; ``Streamed(chunks)`` sends an async iterator of bytes chunked as it comes
    (headers first: a client sees the status at once; the iterator is closed if the client leaves);
    ``Hijack(run)`` answers ``101 UPGRADED`` (or ``200`` when the client did not ask to upgrade) and hands ``run``
    a ``RawStream`` (the bytes after the request, then the socket; ``close_write()`` half-closes) -- the
    connection ends when ``run`` returns.
Errors
    ``ApiError(status, message)``; the runtime's own errors map too (ImageNotFound and ContainerNotFound 404,
    ConflictError 409, UsageError 400, other failures 500): see ``router.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import h11

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger("runtime.daemon")
BODY_LIMIT = 16 << 20
READ_SIZE = 65536
RAW_STREAM = "application/vnd.docker.raw-stream"


class ApiError(Exception):
    """An Engine API error: ``{"message": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Query:
    """The query string as a multi-dict."""

    def __init__(self, text: str) -> None:
        self.values = parse_qs(text, keep_blank_values=True)

    def get(self, name: str, default: str | None = None) -> str | None:
        found = self.values.get(name)
        return found[-1] if found else default

    def getall(self, name: str) -> list[str]:
        return list(self.values.get(name, []))

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if value is None or value == "":
            return default
        return value.lower() not in ("0", "false", "no")

    def int(self, name: str, default: int | None = None) -> int | None:
        value = self.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise ApiError(400, f"invalid value for {name}: {value!r}") from None


@dataclass
class Request:
    method: str
    path: str
    api_version: str | None
    query: Query
    headers: dict[str, str]
    context: Context
    params: dict[str, str] = field(default_factory=dict)
    body_source: AsyncIterator[bytes] | None = None

    async def stream(self) -> AsyncIterator[bytes]:
        source, self.body_source = self.body_source, None
        if source is not None:
            async for chunk in source:
                yield chunk

    async def body(self, limit: int = BODY_LIMIT) -> bytes:
        parts, size = [], 0
        async for chunk in self.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"request body larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def json(self) -> Any:
        data = await self.body()
        if not data.strip():
            return None
        try:
            return json.loads(data)
        except ValueError as exc:
            raise ApiError(400, f"invalid JSON: {exc}") from None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(status, (json.dumps(obj) + "\n").encode(), "application/json")


def empty(status: int = 204) -> Response:
    return Response(status)


@dataclass
class Streamed:
    chunks: AsyncIterator[bytes]
    status: int = 200
    content_type: str = "application/json"


class RawStream:
    """A hijacked connection: ``read`` returns b"" once the client half-closed (or left)."""

    def __init__(self, leftover: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.leftover = leftover
        self.reader = reader
        self.writer = writer

    async def read(self, size: int = READ_SIZE) -> bytes:
        if self.leftover:
            data, self.leftover = self.leftover, b""
            return data
        try:
            return await self.reader.read(size)
        except ConnectionError:
            return b""

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def close_write(self) -> None:
        with contextlib.suppress(OSError):
            if self.writer.can_write_eof():
                self.writer.write_eof()


@dataclass
class Hijack:
    run: Callable[[RawStream], Awaitable[None]]
    content_type: str = RAW_STREAM


Reply = Response | Streamed | Hijack
Handler = Callable[[Request], Awaitable[Reply]]
Dispatch = Callable[[h11.Request, AsyncIterator[bytes]], Awaitable[Reply]]


COMMON_HEADERS = [("Api-Version", "1.41"), ("Docker-Experimental", "false"), ("Ostype", "linux")]
SERVER = ("Server", "runtime-daemon")
