"""The HTTP layer: versioned paths, errors as {"message"}, bodies chunked both ways, keep-alive, the hijack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from runtime.daemon.http import ApiError, Hijack, RawStream, Reply, Request, Streamed, empty, json_response
from runtime.daemon.router import Route
from runtime.errors import ConflictError, ContainerNotFound

from .conftest import Daemon


async def echo(request: Request) -> Reply:
    doc = await request.json()
    return json_response({"path": request.path, "version": request.api_version, "doc": doc, **request.params})


async def fail(request: Request) -> Reply:
    kind = request.query.get("kind")
    if kind == "missing":
        raise ContainerNotFound("No such container: x")
    if kind == "conflict":
        raise ConflictError("in use")
    if kind == "api":
        raise ApiError(418, "teapot")
    raise RuntimeError("boom")


async def stream(request: Request) -> Reply:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"{i}\n".encode()

    return Streamed(chunks())


LEFT = asyncio.Event()


async def forever(request: Request) -> Reply:
    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"first\n"
            await asyncio.Event().wait()
            yield b"never"
        finally:
            LEFT.set()

    return Streamed(chunks())


async def upper(request: Request) -> Reply:
    async def run(raw: RawStream) -> None:
        while data := await raw.read():
            await raw.write(data.upper())
        await raw.write(b"BYE")

    return Hijack(run)


ROUTES = [
    Route("POST", "/echo/{name:path}/tag", echo),
    Route("POST", "/echo/{id}", echo),
    Route("GET", "/fail", fail),
    Route("GET", "/stream", stream),
    Route("GET", "/forever", forever),
    Route("POST", "/upper", upper),
    Route("DELETE", "/gone", lambda r: asyncio.sleep(0, empty())),
]


async def test_versioned_and_unversioned_paths_reach_the_same_route(daemon: Daemon) -> None:
    await daemon.start(ROUTES)
    async with daemon.client() as client:
        a = await client.post("/v1.41/echo/abc", json={"x": 1})
        b = await client.post("/echo/abc", json={"x": 1})
    assert a.json() == {"path": "/echo/abc", "version": "1.41", "doc": {"x": 1}, "id": "abc"}
    assert b.json()["version"] is None and b.json()["id"] == "abc"
    assert a.headers["api-version"] == "1.41" and a.headers["ostype"] == "linux"


async def test_a_path_parameter_holds_slashes(daemon: Daemon) -> None:
    await daemon.start(ROUTES)
    async with daemon.client() as client:
        r = await client.post("/v1.41/echo/127.0.0.1:5000/a/b:1/tag")
    assert r.json()["name"] == "127.0.0.1:5000/a/b:1"


async def test_errors_are_messages_with_their_status(daemon: Daemon) -> None:
    await daemon.start(ROUTES)
    async with daemon.client() as client:
        answers = {k: await client.get("/fail", params={"kind": k}) for k in ("missing", "conflict", "api", "other")}
        unknown = await client.get("/v1.41/nothing/here")
        wrong_method = await client.get("/echo/x")
        too_new = await client.get("/v1.99/fail")
        bad_json = await client.post("/echo/x", content=b"{not json")
    assert {k: r.status_code for k, r in answers.items()} == {"missing": 404, "conflict": 409, "api": 418, "other": 500}
    assert answers["missing"].json() == {"message": "No such container: x"}
    assert answers["other"].json() == {"message": "boom"}
    assert (unknown.status_code, wrong_method.status_code, too_new.status_code) == (404, 405, 400)
    assert bad_json.status_code == 400 and "invalid JSON" in bad_json.json()["message"]


async def test_a_chunked_request_body_is_read_and_the_connection_kept(daemon: Daemon) -> None:
    await daemon.start(ROUTES)
    body = b'{"a": [1, 2, 3]}'
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:5], body[5:])) + b"0\r\n\r\n"
    request = b"POST /echo/1 HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
    answer = await daemon.raw(request + b"DELETE /gone HTTP/1.1\r\nHost: d\r\n\r\n")
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200")
    assert b'"doc": {"a": [1, 2, 3]}' in rest
    assert b"HTTP/1.1 204 No Content\r\n" in rest


async def test_head_of_a_streamed_route_is_headers_only_and_the_connection_kept(daemon: Daemon) -> None:
    await daemon.start(ROUTES)
    async with daemon.client() as client:
        head = await client.head("/stream")
        after = await client.get("/stream")
    assert (head.status_code, head.content) == (200, b"")
    assert after.text == "0\n1\n2\n"


async def test_a_malformed_or_cut_short_body_is_a_400(daemon: Daemon) -> None:
    await daemon.start(ROUTES)
    bad_chunk = await daemon.raw(b"POST /echo/1 HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    cut_short = await daemon.raw(b'POST /echo/1 HTTP/1.1\r\nHost: d\r\nContent-Length: 30\r\n\r\n{"a": ')
    assert bad_chunk.startswith(b"HTTP/1.1 400 ") and b"bad request body" in bad_chunk
    assert cut_short.startswith(b"HTTP/1.1 400 ") and b"bad request body" in cut_short


async def test_a_streamed_answer_is_chunked_as_it_comes(daemon: Daemon) -> None:
    await daemon.start(ROUTES)
    async with daemon.client() as client:
        r = await client.get("/stream")
    assert r.headers["transfer-encoding"] == "chunked"
    assert r.text == "0\n1\n2\n"


async def test_a_client_leaving_a_stream_closes_its_iterator(daemon: Daemon) -> None:
    await daemon.start(ROUTES)
    LEFT.clear()
    reader, writer = await asyncio.open_unix_connection(str(daemon.socket))
    writer.write(b"GET /forever HTTP/1.1\r\nHost: d\r\n\r\n")
    assert b"first" in await reader.readuntil(b"first\n")
    writer.close()
    await asyncio.wait_for(LEFT.wait(), 60)  # guards a hang; nothing is timed


async def test_the_hijack_answers_101_then_carries_raw_bytes_until_half_close(daemon: Daemon) -> None:
    await daemon.start(ROUTES)
    head = b"POST /v1.41/upper HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    answer = await daemon.raw(head + b"hello ")
    status, _, rest = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert b"Upgrade: tcp" in status and b"application/vnd.docker.raw-stream" in status
    assert rest == b"HELLO BYE"


async def test_ping_head_has_no_body_and_garbage_gets_a_400(daemon: Daemon) -> None:
    from runtime.daemon import system

    await daemon.start(system.ROUTES)
    async with daemon.client() as client:
        head = await client.head("/_ping")
        get = await client.get("/v1.41/_ping")
    assert head.status_code == 200 and head.content == b"" and head.headers["api-version"] == "1.41"
    assert get.text == "OK" and get.headers["cache-control"].startswith("no-cache")
    answer = await daemon.raw(b"\x00\x01garbage\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
