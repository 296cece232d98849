"""The database going away under a running registry: requests that need it get 503 UNAVAILABLE with Retry-After
(spec.md "Error Codes": the client may try again), never a 500, and the registry recovers when it comes back."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from registry.db import queries
from tests.api_helpers import assert_error, client_on, digest_of, push_blob
from tests.conftest import POSTGRES_ADMIN_URL, make_config, postgres_database
from tests.tcprelay import TcpRelay

needs_postgres = pytest.mark.skipif(POSTGRES_ADMIN_URL is None, reason="needs REGISTRY_TEST_POSTGRES")


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with postgres_database() as url:
        yield url


@pytest.fixture
def relay(database_url: str) -> Iterator[TcpRelay]:
    url = make_url(database_url)
    relay = TcpRelay((url.host or "127.0.0.1", url.port or 5432))
    relay.start()
    yield relay
    relay.cut()


@pytest.fixture
async def client(tmp_path: Path, database_url: str, relay: TcpRelay) -> AsyncIterator[httpx.AsyncClient]:
    through_relay = make_url(database_url).set(host="127.0.0.1", port=relay.port)
    config = make_config(tmp_path, "inmemory", REGISTRY_DATABASE_URL=through_relay.render_as_string(False))
    async with client_on(config) as client:
        yield client


def assert_unavailable(response: httpx.Response) -> None:
    assert_error(response, 503, "UNAVAILABLE")
    assert response.headers["retry-after"].isdigit()


@needs_postgres
async def test_a_database_down_is_503_with_retry_after_and_recovers(client: httpx.AsyncClient, relay: TcpRelay) -> None:
    digest = await push_blob(client, "app", b"layer")
    assert (await client.get("/v2/_catalog")).status_code == 200

    relay.cut()  # the server gone: pooled connections dead, new ones refused
    assert_unavailable(await client.get("/v2/_catalog"))
    assert_unavailable(await client.head(f"/v2/app/blobs/{digest}"))
    assert_unavailable(await client.post("/v2/app/blobs/uploads/"))
    assert_unavailable(await client.get("/v2/app/tags/list"))

    relay.restore()
    assert (await client.head(f"/v2/app/blobs/{digest}")).status_code == 200
    assert await push_blob(client, "app", b"another layer") == digest_of(b"another layer")
    assert (await client.get("/v2/_catalog")).json() == {"repositories": ["app"]}


@pytest.mark.parametrize(
    "failure",
    [sqlite3.OperationalError("disk I/O error"), OperationalError("INSERT", {}, sqlite3.OperationalError("locked"))],
)
async def test_sqlite_failing_is_503_and_a_bug_stays_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    async def failing(*args: object) -> list[str]:
        raise failure

    async with client_on(make_config(tmp_path, "inmemory")) as client:
        monkeypatch.setattr(queries, "list_repositories", failing)
        assert_unavailable(await client.get("/v2/_catalog"))
        failure = IntegrityError("INSERT", {}, sqlite3.IntegrityError("a bug of ours"))
        with pytest.raises(IntegrityError):  # the test client re-raises what the server answered 500
            await client.get("/v2/_catalog")
