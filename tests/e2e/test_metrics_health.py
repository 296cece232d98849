"""The real `registry serve` with distribution's debug server (`http.debug`) and `health` checks: the metrics scraped
there count every push and pull whichever of two workers served it; a broken storage or database turns the API into
503 and `/debug/health` names the check, and both come back when it is fixed. The same config.yml starts
distribution 2.8.2, whose file, http and tcp checks name and report a failure as ours."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from tests.events.downstream import downstream_running
from tests.tcprelay import TcpRelay

from .client import RegistryClient, expect
from .cluster import postgres_database
from .images import OciImage, make_oci_image, tar_files
from .procs import free_port, wait_until
from .server import RegistryServer, needs_our_server, server_kind
from .test_serve import fresh, workers_of

pytestmark = pytest.mark.e2e
PULLS = 5
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def debug_config(port: int, **extra: Any) -> dict[str, Any]:
    return {"http": {"debug": {"addr": f"127.0.0.1:{port}", "prometheus": {"enabled": True}}}, **extra}


def scrape(port: int) -> Samples:
    text = expect(fresh("GET", f"http://127.0.0.1:{port}/metrics"), 200).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests(found: Samples, handler: str, method: str, code: str) -> float:
    return found.get(("registry_http_requests_total", (("code", code), ("handler", handler), ("method", method))), 0)


def health(port: int) -> httpx.Response:
    return fresh("GET", f"http://127.0.0.1:{port}/debug/health")


@contextmanager
def only_one_serving(server: RegistryServer, serving: int) -> Iterator[None]:
    """Every worker but `serving` stopped (SIGSTOP), so that the kernel hands new connections to that one."""
    stopped = [pid for pid in workers_of(server) if pid != serving]
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)


def image(seed: str) -> OciImage:
    return make_oci_image([tar_files({"seed.txt": seed.encode()})])


@needs_our_server("several workers")
def test_metrics_count_every_push_and_pull_across_two_workers(tmp_path: Path) -> None:
    port = free_port()
    server = RegistryServer(tmp_path / "registry", "ours", extra_config=debug_config(port), args=["--workers", "2"])
    server.start()
    try:
        wait_until(lambda: len(workers_of(server)) == 2, what="two workers", daemon=server.daemon)
        first, second = workers_of(server)
        images = {"team/a": image("a"), "team/b": image("b")}
        for (repo, pushed), worker in zip(images.items(), (first, second), strict=True):
            with only_one_serving(server, worker), RegistryClient(server.url) as client:
                client.push_image(repo, pushed, "v1")
                for _ in range(PULLS):
                    expect(client.get_manifest(repo, pushed.manifest.digest), 200)

        def flushed() -> bool:  # a worker adds its requests to the metrics every second
            return requests(scrape(port), "manifest", "GET", "200") == 2 * PULLS

        wait_until(flushed, what="both workers' pulls in the metrics", daemon=server.daemon)
        found = scrape(port)
    finally:
        server.stop()
    assert requests(found, "manifest_put", "PUT", "201") == 2
    assert requests(found, "manifest", "GET", "200") == 2 * PULLS
    assert requests(found, "upload_put", "PUT", "201") == 4  # each image: a layer and a config
    assert requests(found, "blob", "HEAD", "404") == 4
    latency = "registry_http_request_duration_seconds_count"
    assert found[latency, (("code", "200"), ("handler", "manifest"), ("method", "GET"))] == 2 * PULLS
    sizes = sum(len(blob.data) for pushed in images.values() for blob in pushed.blobs())
    assert found["registry_http_request_bytes_total", (("handler", "upload_put"),)] == sizes
    assert found["registry_stored_manifests", ()] == 2
    assert found["registry_stored_blobs", ()] == 4
    assert found["registry_stored_blob_bytes", ()] == sizes
    assert found["registry_uploads_in_progress", ()] == 0
    commits = found["registry_storage_action_seconds_count", (("action", "commit"), ("driver", "filesystem"))]
    assert commits == 4


def all_workers_answer(url: str, status: int, tries: int = 8) -> bool:
    """`tries` requests, each on a new connection (any worker may take it), all answered `status`."""
    return all(fresh("GET", f"{url}/v2/").status_code == status for _ in range(tries))


CHECKS = {"interval": "1s", "threshold": 2}


@needs_our_server("health checks turn the API into 503")
def test_broken_storage_turns_the_api_into_503_and_back(tmp_path: Path) -> None:
    port, root = free_port(), tmp_path / "registry"
    extra = debug_config(
        port,
        health={"storagedriver": {"enabled": True, **CHECKS}},
        database={"url": f"sqlite+aiosqlite:///{root / 'registry.db'}"},  # outside the storage that breaks
    )
    server = RegistryServer(root, "ours", extra_config=extra, args=["--workers", "2"])
    server.start()
    try:
        assert (health(port).status_code, health(port).json()) == (200, {})
        data, away = root / "data", root / "away"
        data.rename(away)
        data.write_text("a file where the storage root was: nothing can be written under it")
        wait_until(lambda: health(port).status_code == 503, what="/debug/health to fail", daemon=server.daemon)
        assert list(health(port).json()) == ["storagedriver_filesystem"]
        wait_until(lambda: all_workers_answer(server.url, 503), what="every worker to answer 503")
        body = fresh("GET", f"{server.url}/v2/").json()
        assert body["errors"][0]["code"] == "UNAVAILABLE", body
        assert body["errors"][0]["detail"] == "health check failed: please see /debug/health", body

        data.unlink()
        away.rename(data)
        wait_until(lambda: health(port).status_code == 200, what="/debug/health to pass", daemon=server.daemon)
        assert health(port).json() == {}
        assert all_workers_answer(server.url, 200), "every worker passes once /debug/health does"
    finally:
        server.stop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@needs_our_server("health.database")
def test_unreachable_database_turns_the_api_into_503_and_back(tmp_path: Path, postgres_url: str) -> None:
    url = make_url(postgres_url)
    relay = TcpRelay((url.host or "127.0.0.1", url.port or 5432))
    relay.start()
    through = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    port = free_port()
    extra = debug_config(port, health={"database": {"enabled": True, **CHECKS}}, database={"url": through})
    server = RegistryServer(tmp_path / "registry", "ours", extra_config=extra)
    server.start()
    try:
        assert health(port).status_code == 200
        relay.cut()
        wait_until(lambda: health(port).status_code == 503, what="/debug/health to fail", daemon=server.daemon)
        assert list(health(port).json()) == ["database"]
        assert fresh("GET", f"{server.url}/v2/").status_code == 503
        relay.restore()
        wait_until(lambda: health(port).status_code == 200, what="/debug/health to pass", daemon=server.daemon)
        assert fresh("GET", f"{server.url}/v2/").status_code == 200
    finally:
        server.stop()
        relay.cut()


@pytest.mark.parametrize("kind", ["ours", "distribution"])
def test_the_same_config_yml_starts_distribution_too(tmp_path: Path, kind: str) -> None:
    """distribution 2.8.2 reads our http.debug and health keys (and ignores health.database, ours)."""
    if server_kind() == "distribution" and kind == "ours":
        pytest.skip("E2E_SERVER=distribution")
    port = free_port()
    checks = {"enabled": True, "interval": "1s", "threshold": 3}
    extra = debug_config(port, health={"storagedriver": checks, "database": checks})
    server = RegistryServer(tmp_path / kind, kind, extra_config=extra)
    server.start()
    try:
        with RegistryClient(server.url) as client:
            client.push_image("team/app", image("distribution"), "v1")
        assert (health(port).status_code, health(port).json()) == (200, {})
        assert "registry_" in expect(fresh("GET", f"http://127.0.0.1:{port}/metrics"), 200).text
        assert health(port).status_code == 200
        assert fresh("POST", f"http://127.0.0.1:{port}/debug/health").status_code == 404
    finally:
        server.stop()


@contextmanager
def listening() -> Iterator[socket.socket]:
    """A port the tcp checks connect to. Nothing accepts: every probe's connection waits in the backlog, so it is as
    long as the kernel allows (with 8, a slow run's probes filled it and the next connect timed out)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(socket.SOMAXCONN)
        yield sock


def turns(port: int, status: int, server: RegistryServer) -> dict[str, str]:
    """Poll `/debug/health` until it answers `status`; what it names then."""
    what = f"/debug/health to answer {status}"
    wait_until(lambda: health(port).status_code == status, what=what, daemon=server.daemon)
    named: dict[str, str] = health(port).json()
    return named


@pytest.mark.parametrize("kind", ["ours", "distribution"])
def test_file_http_and_tcp_checks_as_distributions(tmp_path: Path, kind: str) -> None:
    """The same health.file, health.http and health.tcp sections in both servers: a file that appears takes the
    registry out (every request 503, /debug/health naming the file) and its removal puts it back; an http check
    answered another status and a tcp port closed do the same, each named by its uri and addr."""
    if server_kind() == "distribution" and kind == "ours":
        pytest.skip("E2E_SERVER=distribution")
    flag = tmp_path / "out-of-rotation"
    with downstream_running() as downstream, listening() as tcp:
        downstream.status = 200
        addr = f"127.0.0.1:{tcp.getsockname()[1]}"
        checks = {
            "file": [{"file": str(flag), "interval": "1s"}],
            "http": [{"uri": downstream.url, "statuscode": 200, "timeout": "2s", "interval": "1s"}],
            "tcp": [{"addr": addr, "timeout": "2s", "interval": "1s"}],
        }
        port = free_port()
        args = ["--workers", "2"] if kind == "ours" else []
        server = RegistryServer(tmp_path / kind, kind, extra_config=debug_config(port, health=checks), args=args)
        server.start()
        try:
            with RegistryClient(server.url) as client:
                client.push_image("team/app", image(kind), "v1")
            assert (health(port).status_code, health(port).json()) == (200, {})
            expvars = expect(fresh("GET", f"http://127.0.0.1:{port}/debug/vars"), 200).json()
            assert {"cmdline", "memstats"} <= set(expvars), "Go's expvar, as distribution serves it"

            flag.touch()
            assert turns(port, 503, server) == {str(flag): "file exists"}
            wait_until(lambda: all_workers_answer(server.url, 503), what="every worker to answer 503")
            flag.unlink()
            assert turns(port, 200, server) == {}
            assert all_workers_answer(server.url, 200)

            downstream.status = 500
            assert turns(port, 503, server) == {downstream.url: "downstream service returned unexpected status: 500"}
            assert ("HEAD", None) in downstream.seen
            downstream.status = 200
            assert turns(port, 200, server) == {}

            tcp.close()
            failing = turns(port, 503, server)
            assert list(failing) == [addr] and failing[addr].startswith(f"connection to {addr} failed"), failing
        finally:
            server.stop()
