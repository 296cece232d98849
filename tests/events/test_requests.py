"""One record per request (``registry.events.requests``): its fields through a push and a pull, the request id
honoured, made and echoed, the user from Basic and Bearer credentials, the client through trusted proxies, the
bytes of a sendfile response, and observers that fail."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from registry.events.requests import (
    RequestObserving,
    RequestRecord,
    UuidSequence,
    add_observer,
    current_request_id,
    new_request_id,
)
from registry.protocol import ZEROCOPY
from tests.api_helpers import (
    DRIVERS,
    app_of,
    client_on,
    digest_of,
    image_manifest,
    push_blob,
    put_manifest,
)
from tests.auth.helpers import basic, config_with, write_htpasswd
from tests.conftest import make_config
from tests.test_protocol import serve

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@contextlib.asynccontextmanager
async def observed(client: httpx.AsyncClient) -> AsyncIterator[list[RequestRecord]]:
    records: list[RequestRecord] = []
    add_observer(app_of(client), records.append)
    yield records


@pytest.mark.parametrize("driver", DRIVERS)
async def test_a_push_and_a_pull_make_one_record_each_with_their_route_repository_status_and_bytes(
    tmp_path: Path, driver: str
) -> None:
    config_blob, layer = b'{"config": true}', b"layer bytes " * 100
    manifest = image_manifest(config_blob, [layer])
    async with client_on(make_config(tmp_path, driver)) as client, observed(client) as records:
        headers = {"User-Agent": "docker/27.0 go/go1.22"}
        await push_blob(client, "team/app", config_blob)
        await push_blob(client, "team/app", layer)
        assert (await put_manifest(client, "team/app", "v1", manifest)).status_code == 201
        assert (await client.get("/v2/team/app/manifests/v1", headers=headers)).status_code == 200
        assert (await client.get(f"/v2/team/app/blobs/{digest_of(layer)}")).status_code == 200
        assert (await client.head(f"/v2/team/app/blobs/{digest_of(layer)}")).status_code == 200
        assert (await client.get("/v2/nowhere")).status_code == 404
    seen = [(r.method, r.route, r.repository, r.status, r.bytes_in, r.bytes_out) for r in records]
    assert seen == [
        ("POST", "uploads", "team/app", 201, len(config_blob), 0),
        ("POST", "uploads", "team/app", 201, len(layer), 0),
        ("PUT", "manifest_put", "team/app", 201, len(manifest), 0),
        ("GET", "manifest", "team/app", 200, 0, len(manifest)),
        ("GET", "blob", "team/app", 200, 0, len(layer)),
        ("HEAD", "blob", "team/app", 200, 0, 0),
        ("GET", None, None, 404, 0, records[-1].bytes_out),
    ]
    assert records[3].user_agent == "docker/27.0 go/go1.22" and records[3].path == "/v2/team/app/manifests/v1"
    assert all(r.remote_addr == "127.0.0.1" and r.user is None and r.duration > 0 for r in records)
    assert records[-1].bytes_out > 0  # the error body


async def test_the_query_string_stays_out_of_the_record(tmp_path: Path) -> None:
    async with client_on(make_config(tmp_path, "inmemory")) as client, observed(client) as records:
        await client.get("/v2/_catalog", params={"n": "1", "password": "hunter2"})
    assert (records[0].route, records[0].path) == ("catalog", "/v2/_catalog")
    assert "hunter2" not in repr(records[0])


async def test_a_sane_request_id_is_honoured_and_echoed(tmp_path: Path) -> None:
    async with client_on(make_config(tmp_path, "inmemory")) as client, observed(client) as records:
        response = await client.get("/v2/", headers={"X-Request-Id": "build-42/step:7"})
    assert response.headers["X-Request-Id"] == "build-42/step:7" == records[0].request_id


@pytest.mark.parametrize("sent", [None, "", "has space", 'quote"d', "x" * 129, "caf\u00e9"])
async def test_a_request_id_is_made_when_none_or_an_insane_one_came(tmp_path: Path, sent: str | None) -> None:
    headers = {} if sent is None else {b"X-Request-Id": sent.encode()}
    async with client_on(make_config(tmp_path, "inmemory")) as client, observed(client) as records:
        first = await client.get("/v2/", headers=headers)
        second = await client.get("/v2/", headers=headers)
    made = [first.headers["X-Request-Id"], second.headers["X-Request-Id"]]
    assert all(UUID.fullmatch(value) for value in made) and made[0] != made[1]
    assert [r.request_id for r in records] == made
    assert first.headers.get_list("X-Request-Id") == [made[0]]


async def test_the_request_id_is_on_the_request_state_and_in_the_context_of_its_handler() -> None:
    async def handler(request: Request) -> JSONResponse:
        return JSONResponse({"state": request.state.request_id, "context": current_request_id()})

    app = RequestObserving(Starlette(routes=[Route("/", handler)]), [])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/", headers={"X-Request-Id": "abc"})
        made = await client.get("/")
    assert response.json() == {"state": "abc", "context": "abc"}
    assert made.json()["state"] == made.json()["context"] == made.headers["X-Request-Id"]
    assert current_request_id() is None


async def test_the_remote_address_is_the_forwarded_client_from_a_trusted_proxy_only(tmp_path: Path) -> None:
    forwarded = {"X-Forwarded-For": "198.51.100.7"}
    config = make_config(tmp_path, "inmemory")
    async with client_on(config) as client, observed(client) as records:
        await client.get("/v2/", headers=forwarded)
    async with client_on(config, peer=("203.0.113.9", 4000)) as client, observed(client) as untrusted:
        await client.get("/v2/", headers=forwarded)
    assert (records[0].remote_addr, untrusted[0].remote_addr) == ("198.51.100.7", "203.0.113.9")


async def test_the_user_is_the_account_basic_credentials_proved(tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "alice-pw"})
    config = config_with(tmp_path, {"htpasswd": {"realm": "test", "path": str(htpasswd)}})
    async with client_on(config) as client, observed(client) as records:
        assert (await client.get("/v2/", headers=basic("alice", "alice-pw"))).status_code == 200
        assert (await client.get("/v2/", headers=basic("alice", "wrong"))).status_code == 401
        assert (await client.get("/v2/")).status_code == 401
    assert [(r.route, r.status, r.user) for r in records] == [("base", 200, "alice"), ("base", 401, None)] + [
        ("base", 401, None)
    ]


async def test_the_user_is_the_subject_of_a_bearer_token(tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "alice-pw"})
    server = {"key": str(tmp_path / "token.pem"), "htpasswd": str(htpasswd), "access": _alice_pushes}
    auth = {"token": {"service": "registry.test", "issuer": "test", "server": server}}
    async with client_on(config_with(tmp_path, auth)) as client, observed(client) as records:
        query = {"service": "registry.test", "scope": "repository:team/app:pull"}
        issued = await client.get("/auth/token", params=query, headers=basic("alice", "alice-pw"))
        token = issued.json()["token"]
        response = await client.get("/v2/team/app/tags/list", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404
    assert [(r.route, r.status, r.repository, r.user) for r in records] == [
        ("token", 200, None, None),
        ("tags", 404, "team/app", "alice"),
    ]


_alice_pushes = [{"users": ["alice"], "repositories": ["team/*"], "actions": ["pull", "push"]}]


async def test_observers_that_raise_are_skipped_and_the_request_never_sees_it(tmp_path: Path) -> None:
    def broken(record: RequestRecord) -> None:
        raise RuntimeError("observer bug")

    async with client_on(make_config(tmp_path, "inmemory")) as client:
        records: list[RequestRecord] = []
        add_observer(app_of(client), broken)
        add_observer(app_of(client), records.append)
        assert (await client.get("/v2/")).status_code == 200
    assert [r.status for r in records] == [200]


async def test_a_failing_app_is_recorded_as_500() -> None:
    async def fails(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    records: list[RequestRecord] = []
    app = RequestObserving(fails, [records.append])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/x")
    assert [(r.status, r.route, r.bytes_out) for r in records] == [(500, None, 0)]


async def test_a_sendfile_response_counts_its_bytes_and_still_leaves_by_sendfile(tmp_path: Path) -> None:
    data = b"0123456789" * 100_000
    (tmp_path / "blob").write_bytes(data)
    records: list[RequestRecord] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert ZEROCOPY in scope["extensions"]
        with (tmp_path / "blob").open("rb") as file:
            headers = [(b"content-length", b"%d" % (len(data) - 10))]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": ZEROCOPY, "file": file.fileno(), "offset": 10, "count": len(data) - 10})

    async with contextlib.aclosing(serve(RequestObserving(app, [records.append]))) as urls:
        url = await anext(urls)
        async with httpx.AsyncClient() as client:
            response = await client.get(url, headers={"X-Request-Id": "sendfile-1"})
    assert response.content == data[10:] and response.headers["X-Request-Id"] == "sendfile-1"
    assert [(r.status, r.bytes_out, r.request_id) for r in records] == [(200, len(data) - 10, "sendfile-1")]


def test_request_ids_are_version_4_uuids_unique_per_process_and_a_forked_child_draws_its_own() -> None:
    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == 1000 and all(UUID.fullmatch(i) for i in ids)
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # a worker forked from the serving process
        os.write(writing, new_request_id().encode())
        os._exit(0)
    os.close(writing)
    os.waitpid(child, 0)
    with os.fdopen(reading) as pipe:
        childs = pipe.read()
    assert UUID.fullmatch(childs) and childs[:23] != ids[-1][:23], "a forked child must not continue the parent's ids"


def test_an_id_keeps_its_twelve_last_digits_when_its_number_is_small_or_wraps() -> None:
    ids = UuidSequence()
    ids._start = 0
    assert ids.of(1).endswith("-000000000001") and UUID.fullmatch(ids.of(1))
    ids._start = 0xFFFF_FFFF_FFFF
    assert ids.of(1).endswith("-000000000000") and ids.of(2).endswith("-000000000001")


class Counted:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def count(self, route: str | None, method: str, status: int, seconds: float, received: int, sent: int) -> None:
        self.calls.append((route, method, status, received, sent))


async def test_the_metrics_tally_counts_each_request_without_a_record_or_an_observer() -> None:
    async def echo(scope: Any, receive: Any, send: Any) -> None:
        body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": body * 2})

    tally = Counted()
    app = RequestObserving(echo, [], tally)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        await client.post("/x", content=b"abc")
    assert tally.calls == [(None, "POST", 201, 3, 6)]


async def test_a_tally_that_raises_is_logged_and_the_request_never_sees_it(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def count(self, route: str | None, method: str, status: int, seconds: float, received: int, sent: int) -> None:
            raise RuntimeError("tally bug")

    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    records: list[RequestRecord] = []
    app = RequestObserving(ok, [records.append], Broken())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/x")).text == "ok"
    assert [r.status for r in records] == [200], "the observers still see the request"
    assert "request metrics failed" in caplog.text and "tally bug" in caplog.text
