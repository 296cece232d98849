"""Posting an envelope on a kept-alive connection: what the endpoint receives, connections reused and replaced,
answers of every framing, and failures named (an endpoint in the test: an asyncio server that answers as told)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from registry.events.posting import DirectPoster, HttpxPoster, PostFailed, poster_for

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED_THEN_CLOSE = (
    b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n"
)
UNTIL_CLOSE = b"HTTP/1.0 204 No Content\r\n\r\n"


class Endpoint:
    """Answers each request with the next of ``answers`` (the last one again when they run out); None: no answer."""

    def __init__(self, *answers: bytes | None) -> None:
        self.answers = list(answers) or [OK]
        self.requests: list[tuple[bytes, bytes]] = []  # (head, body)
        self.connections: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> Endpoint:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hook?x=1"
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append((head, await reader.readexactly(length)))
                answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
                if answer is None:
                    await asyncio.sleep(3600)
                writer.write(answer or b"")
                await writer.drain()
                if b"close" in (answer or b"") or answer == UNTIL_CLOSE:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def drop_connections(self) -> None:
        for writer in self.connections:
            writer.close()
        await asyncio.sleep(0)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.drop_connections()


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    made = Endpoint()
    yield made
    if made.server is not None:
        await made.stop()


async def test_envelopes_go_on_one_kept_alive_connection(endpoint: Endpoint) -> None:
    await endpoint.start()
    poster = DirectPoster(endpoint.url, [("Authorization", "Bearer t"), ("Content-Type", "x/y")], 5.0)
    assert [await poster.post(b'{"events":[1]}'), await poster.post(b'{"events":[2]}')] == [200, 200]
    await poster.aclose()
    assert len(endpoint.connections) == 1
    head, body = endpoint.requests[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /hook?x=1 HTTP/1.1" and f"Host: {endpoint.url.split('/')[2]}" in lines
    assert "Authorization: Bearer t" in lines and "Content-Type: x/y" in lines and "Content-Length: 14" in lines
    assert [body for _, body in endpoint.requests] == [b'{"events":[1]}', b'{"events":[2]}']


async def test_a_connection_the_endpoint_closed_while_idle_is_replaced(endpoint: Endpoint) -> None:
    await endpoint.start()
    poster = DirectPoster(endpoint.url, [], 5.0)
    assert await poster.post(b"first") == 200
    await endpoint.drop_connections()
    assert await poster.post(b"second") == 200
    await poster.aclose()
    assert len(endpoint.connections) == 2 and endpoint.requests[-1][1] == b"second"


@pytest.mark.parametrize("answer", [CHUNKED_THEN_CLOSE, UNTIL_CLOSE])
async def test_answers_framed_otherwise_are_read_and_their_connection_closed(endpoint: Endpoint, answer: bytes) -> None:
    endpoint.answers = [answer, OK]
    await endpoint.start()
    poster = DirectPoster(endpoint.url, [], 5.0)
    assert await poster.post(b"a") == int(answer.split()[1])
    assert await poster.post(b"b") == 200
    await poster.aclose()
    assert len(endpoint.connections) == 2


async def test_failures_are_named(endpoint: Endpoint) -> None:
    endpoint.answers = [None]
    await endpoint.start()
    with pytest.raises(PostFailed, match="no answer within 0.2s"):
        await DirectPoster(endpoint.url, [], 0.2).post(b"x")
    await endpoint.stop()
    with pytest.raises(PostFailed, match="ConnectionRefusedError"):
        await DirectPoster(endpoint.url, [], 5.0).post(b"x")
    endpoint.server = None


async def test_credentials_in_the_url_are_sent_as_basic_auth(endpoint: Endpoint) -> None:
    await endpoint.start()
    poster = DirectPoster(endpoint.url.replace("//", "//us%40er:p%3Ass@"), [], 5.0)
    assert await poster.post(b"x") == 200
    await poster.aclose()
    expected = base64.b64encode(b"us@er:p:ss").decode()
    assert f"Authorization: Basic {expected}" in endpoint.requests[0][0].decode().split("\r\n")


async def test_an_endpoint_behind_a_proxy_is_posted_to_with_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    async with httpx.AsyncClient() as client:
        assert isinstance(poster_for("http://hooks.example/e", [], 1.0, client), HttpxPoster)
        assert isinstance(poster_for("http://internal.example/e", [], 1.0, client), DirectPoster)
        assert isinstance(poster_for("https://hooks.example/e", [], 1.0, client), DirectPoster)  # no HTTPS_PROXY
