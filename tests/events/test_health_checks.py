"""distribution's ``health.file``, ``health.http`` and ``health.tcp`` checks (``registry.events.health_checks``): each
named as distribution names it, each turning every request into 503 while it fails, as the storage check does."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest

from registry.config import HttpCheckConfig, TcpCheckConfig
from registry.events.debug import DIRECTORY_ENV
from registry.events.health import Health
from registry.events.health_checks import http_check, listed_checks, tcp_check
from tests.api_helpers import app_of, client_on
from tests.conftest import make_config
from tests.events.downstream import Downstream, downstream_running
from tests.events.test_debug import debug_client
from tests.events.test_health import assert_unavailable

HOUR = "1h"  # probed once at start, then by the test (probe_all)


def health_of(client: httpx.AsyncClient) -> Health:
    found: Health | None = app_of(client).state.health
    assert found is not None
    return found


@asynccontextmanager
async def registry_with(tmp_path: Path, kind: str, *checks: dict[str, object]) -> AsyncIterator[httpx.AsyncClient]:
    config = make_config(tmp_path, "inmemory", **{f"REGISTRY_HEALTH_{kind.upper()}": json.dumps(list(checks))})
    async with client_on(config) as client:
        yield client


async def test_a_file_that_appears_takes_the_registry_out_and_its_removal_back(tmp_path: Path) -> None:
    flag = tmp_path / "out-of-rotation"
    async with registry_with(tmp_path, "file", {"file": str(flag), "interval": HOUR}) as client:
        health = health_of(client)
        await health.probe_all()
        assert (await client.get("/v2/")).status_code == 200
        flag.touch()
        await health.probe_all()
        assert health.failing == {str(flag): "file exists"}
        assert_unavailable(await client.get("/v2/"))
        flag.unlink()
        await health.probe_all()
        assert health.failing == {}
        assert (await client.get("/v2/")).status_code == 200


async def test_a_directory_counts_as_a_file_as_distributions_stat(tmp_path: Path) -> None:
    flag = tmp_path / "drain"
    async with registry_with(tmp_path, "file", {"file": str(flag), "interval": HOUR}) as client:
        flag.mkdir()
        await health_of(client).probe_all()
        assert (await client.get("/v2/")).status_code == 503


async def test_debug_health_names_the_file_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "debug"
    (directory / "health").mkdir(parents=True)
    monkeypatch.setenv(DIRECTORY_ENV, str(directory))
    flag = tmp_path / "out"
    checks = json.dumps([{"file": str(flag), "interval": HOUR}])
    config = make_config(tmp_path, "inmemory", REGISTRY_HTTP_DEBUG_ADDR="127.0.0.1:5001", REGISTRY_HEALTH_FILE=checks)
    async with client_on(config) as client, debug_client(config, directory) as debug:
        flag.touch()
        await health_of(client).probe_all()
        answer = await debug.get("/debug/health")
        assert (answer.status_code, answer.json()) == (503, {str(flag): "file exists"})


# --- http: a HEAD of the uri, its status compared ---


@pytest.fixture
def downstream() -> Iterator[Downstream]:
    with downstream_running() as server:
        yield server


async def test_an_http_check_fails_on_another_status_and_passes_again(tmp_path: Path, downstream: Downstream) -> None:
    check = {"uri": downstream.url, "headers": {"Authorization": ["Basic eDp5"]}, "interval": HOUR, "timeout": "5s"}
    async with registry_with(tmp_path, "http", check) as client:
        health = health_of(client)
        await health.probe_all()
        assert health.failing == {downstream.url: "downstream service returned unexpected status: 500"}
        assert_unavailable(await client.get("/v2/"))
        downstream.status = 200
        await health.probe_all()
        assert health.failing == {}
        assert (await client.get("/v2/")).status_code == 200
    assert set(downstream.seen) == {("HEAD", "Basic eDp5")}, "distribution's checker sends a HEAD with the headers"


async def test_an_http_check_expects_its_statuscode(downstream: Downstream) -> None:
    downstream.status = 204
    await http_check(HttpCheckConfig(uri=downstream.url, statuscode=204))()
    with pytest.raises(Exception, match="unexpected status: 204"):
        await http_check(HttpCheckConfig(uri=downstream.url))()


async def test_an_http_check_fails_when_nothing_answers_within_its_timeout() -> None:
    with listening_socket() as silent:  # connections are queued, never accepted nor answered
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(Exception, match="timed out"):
            await http_check(HttpCheckConfig(uri=uri, timeout=0.2))()


async def test_an_http_check_fails_when_refused() -> None:
    with bound_socket() as closed:
        uri = f"http://127.0.0.1:{closed.getsockname()[1]}/"
        with pytest.raises(Exception, match=f"error while checking {uri}"):
            await http_check(HttpCheckConfig(uri=uri, timeout=5.0))()


# --- tcp: a connection made ---


@contextmanager
def bound_socket() -> Iterator[socket.socket]:
    """A port bound and not listening: a connection to it is refused until it listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock


@contextmanager
def listening_socket() -> Iterator[socket.socket]:
    with bound_socket() as sock:
        sock.listen(8)
        yield sock


async def test_a_tcp_check_fails_on_a_closed_port_and_passes_once_it_listens(tmp_path: Path) -> None:
    with bound_socket() as port:
        addr = f"127.0.0.1:{port.getsockname()[1]}"
        async with registry_with(tmp_path, "tcp", {"addr": addr, "timeout": "5s", "interval": HOUR}) as client:
            health = health_of(client)
            await health.probe_all()
            assert list(health.failing) == [addr]
            assert health.failing[addr].startswith(f"connection to {addr} failed")
            assert_unavailable(await client.get("/v2/"))
            port.listen(8)
            await health.probe_all()
            assert health.failing == {}
            assert (await client.get("/v2/")).status_code == 200


async def test_a_tcp_check_of_an_ipv6_address_in_brackets() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with socket.socket(socket.AF_INET6) as sock:
        try:
            sock.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback")
        sock.listen(8)
        await tcp_check(TcpCheckConfig(addr=f"[::1]:{sock.getsockname()[1]}", timeout=5.0))()


async def test_thresholds_apply_to_the_listed_checks(tmp_path: Path) -> None:
    flag = tmp_path / "out"
    checks = json.dumps([{"file": str(flag), "interval": HOUR, "threshold": 2}])
    health = Health()  # alone: a running app's own first probe could come between the test's two
    for name, check, period in listed_checks(make_config(tmp_path, "inmemory", REGISTRY_HEALTH_FILE=checks).health):
        health.add(name, check, period)
    flag.touch()
    await health.probe_all()
    assert health.failing == {}, "one failure of two"
    await health.probe_all()
    assert list(health.failing) == [str(flag)]
