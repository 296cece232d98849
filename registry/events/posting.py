"""How a delivery loop posts an envelope to its endpoint: ``post(body)`` answers the status, or raises PostFailed.

Pulls come by the thousand a second and their posts are made by the same process that serves them, so a post must
cost little: ``DirectPoster`` writes the request on one kept-alive connection (TLS for https, the system's CAs, as
distribution's Go client) and reads the answer with httptools, about a tenth of what an httpx request costs.
An endpoint reached through a proxy (``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``, as distribution honours them)
is posted to with httpx, which speaks to proxies.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import urllib.request
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import unquote, urlsplit

import httptools
import httpx

READ_SIZE = 65536


class PostFailed(Exception):
    """The envelope did not reach the endpoint, or its answer could not be read: why, in a few words."""


class Poster(Protocol):
    async def post(self, body: bytes) -> int: ...

    async def aclose(self) -> None: ...


def poster_for(url: str, headers: Sequence[tuple[str, str]], timeout: float, client: httpx.AsyncClient) -> Poster:
    """A direct connection, unless the environment names a proxy for the URL."""
    parts = urlsplit(url)
    proxied = parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(parts.hostname or "")
    return HttpxPoster(url, headers, timeout, client) if proxied else DirectPoster(url, headers, timeout)


class HttpxPoster:
    def __init__(self, url: str, headers: Sequence[tuple[str, str]], timeout: float, client: httpx.AsyncClient) -> None:
        self.url, self.headers, self.timeout, self.client = url, list(headers), timeout, client

    async def post(self, body: bytes) -> int:
        try:
            response = await self.client.post(self.url, content=body, headers=self.headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise PostFailed(f"{type(exc).__name__}: {exc}") from exc
        return response.status_code

    async def aclose(self) -> None:
        return None


class DirectPoster:
    """HTTP/1.1 POSTs on one connection, kept alive while the endpoint keeps it; a connection the endpoint closed
    while it was idle is replaced once, before any answer was read."""

    def __init__(self, url: str, headers: Sequence[tuple[str, str]], timeout: float) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self.timeout = timeout
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc.rpartition('@')[2]}"]
        if parts.username is not None and not any(name.lower() == "authorization" for name, _ in headers):
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            lines.append(f"Authorization: Basic {base64.b64encode(credentials).decode()}")  # as Go's client does
        lines += [f"{name}: {value}" for name, value in headers]
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, body: bytes) -> int:
        try:
            async with asyncio.timeout(self.timeout):
                reused = self._streams is not None
                try:
                    status = await self._exchange(body)
                except OSError:
                    if not reused:
                        raise
                    await self.aclose()
                    status = None
                if status is None and reused:  # closed while idle: once more, on a new connection
                    status = await self._exchange(body)
        except TimeoutError as exc:
            await self.aclose()
            raise PostFailed(f"no answer within {self.timeout}s") from exc
        except (OSError, httptools.HttpParserError, ssl.SSLError) as exc:
            await self.aclose()
            raise PostFailed(f"{type(exc).__name__}: {exc}") from exc
        if status is None:
            raise PostFailed("the connection was closed without an answer")
        return status

    async def _exchange(self, body: bytes) -> int | None:
        """The answer's status; None when the connection closed before any of it."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port, ssl=self.tls)
        reader, writer = self._streams
        writer.write(b"%s%d\r\n\r\n%s" % (self._head, len(body), body))
        await writer.drain()
        answer = _Answer()
        parser = answer.parser = httptools.HttpResponseParser(answer)
        while not answer.complete:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            parser.feed_data(data)
        if not (answer.complete and answer.keep_alive):
            await self.aclose()
        return parser.get_status_code() if answer.headers_read else None

    async def aclose(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()  # not waited for: an endpoint that never finishes a TLS close holds nothing up


class _Answer:
    """httptools' callbacks: how far the answer was read (its body is not kept), and whether the connection stays."""

    parser: httptools.HttpResponseParser

    def __init__(self) -> None:
        self.headers_read = self.complete = self.keep_alive = False

    def on_headers_complete(self) -> None:
        self.headers_read = True

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()  # llhttp knows it only until the next message
