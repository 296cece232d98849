"""The real `registry serve` process: workers, configuration errors, ignored sections, no config, SIGTERM."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from .client import describe, expect
from .images import MANIFEST_ACCEPT, Blob, make_oci_image, sha256_digest, tar_files
from .procs import alive, children, wait_until
from .server import RegistryServer, needs_our_server, server_kind

pytestmark = [pytest.mark.e2e, needs_our_server("`registry serve` options, workers and configuration checks")]

SESSIONS = 16
REQUEST_TIMEOUT = 30.0
EXIT_TIMEOUT = 10.0
UNIMPLEMENTED_SECTIONS = {
    "redis": {"addr": "127.0.0.1:6379", "db": 0},
    "validation": {"disabled": True},  # validation.manifests is implemented: the key it names is reported
}
IGNORED_KEYS = ("redis", "validation.disabled")


class Servers:
    """Makes registry servers for one test and stops them all afterwards; `log_path` is the latest one's log."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.made: list[RegistryServer] = []
        self.log_title = "registry server"
        self.log_path: Path | None = None

    def __call__(self, **options: Any) -> RegistryServer:
        server = RegistryServer(self.base / f"server-{len(self.made)}", server_kind(), **options)
        self.made.append(server)
        self.log_title, self.log_path = server.log_title, server.log_path
        return server

    def stop_all(self) -> None:
        for server in self.made:
            server.stop()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    made = Servers(tmp_path)
    try:
        yield made
    finally:
        made.stop_all()


def workers_of(server: RegistryServer) -> list[int]:
    """The uvicorn worker processes: python children of the server started by multiprocessing's spawn.

    The spawn start method also runs multiprocessing's resource tracker as a python child; it serves nothing.
    """
    assert server.daemon is not None
    return sorted(
        pid
        for pid, argv in children(server.daemon.pid).items()
        if argv and os.path.basename(argv[0]).startswith("python") and any("spawn_main" in arg for arg in argv)
    )


def fresh(method: str, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
    """One request on a new connection (a client of its own), so the kernel may hand it to any worker."""
    with httpx.Client(timeout=REQUEST_TIMEOUT, trust_env=False) as client:
        return client.request(method, url, **kwargs)


def upload_in_two_chunks(base_url: str, repo: str, data: bytes) -> str:
    """POST, PATCH the first half, PATCH the second half, PUT ?digest=: each request on its own connection."""
    digest, half = sha256_digest(data), len(data) // 2
    octets = {"content-type": "application/octet-stream"}
    start = expect(fresh("POST", f"{base_url}/v2/{repo}/blobs/uploads/"), 202)
    location = httpx.URL(base_url).join(start.headers["location"])
    first = fresh("PATCH", location, content=data[:half], headers={**octets, "content-range": f"0-{half - 1}"})
    expect(first, 202)
    assert first.headers.get("range") == f"0-{half - 1}", describe(first)
    location = httpx.URL(base_url).join(first.headers["location"])
    second_range = f"{half}-{len(data) - 1}"
    second = fresh("PATCH", location, content=data[half:], headers={**octets, "content-range": second_range})
    expect(second, 202)
    assert second.headers.get("range") == f"0-{len(data) - 1}", describe(second)
    location = httpx.URL(base_url).join(second.headers["location"]).copy_merge_params({"digest": digest})
    done = expect(fresh("PUT", location, headers=octets), 201)
    assert done.headers.get("docker-content-digest") == digest, describe(done)
    return digest


@pytest.mark.parametrize(
    ("args", "extra_config"),
    [(["--workers", "2"], None), ([], {"http": {"workers": 2}})],
    ids=["flag", "config"],
)
def test_two_workers_share_uploads_and_manifests(
    servers: Servers, args: Sequence[str], extra_config: Mapping[str, Any] | None
) -> None:
    server = servers(args=args, extra_config=extra_config)
    server.start()
    wait_until(lambda: len(workers_of(server)) == 2, what="2 uvicorn workers", daemon=server.daemon, timeout=30)

    blobs = [os.urandom(64 * 1024 + 4099 * i + 1) for i in range(SESSIONS)]
    repos = [f"e2e/workers-{i % 4}" for i in range(SESSIONS)]
    with ThreadPoolExecutor(max_workers=SESSIONS) as pool:
        digests = list(pool.map(lambda repo, data: upload_in_two_chunks(server.url, repo, data), repos, blobs))
        urls = [f"{server.url}/v2/{repo}/blobs/{digest}" for repo, digest in zip(repos, digests, strict=True)]
        fetched = list(pool.map(lambda url: fresh("GET", url), urls))
    for data, digest, response in zip(blobs, digests, fetched, strict=True):
        expect(response, 200)
        assert response.content == data, f"{digest}: {len(response.content)} bytes back, {len(data)} pushed"

    image = make_oci_image([tar_files({"etc/e2e-workers": b"two workers\n"})])
    with server.client() as client:
        client.push_image("e2e/workers-m", image, "v1")
    for i in range(10):
        reference = "v1" if i % 2 else image.manifest.digest
        got = expect(
            fresh("GET", f"{server.url}/v2/e2e/workers-m/manifests/{reference}", headers={"accept": MANIFEST_ACCEPT}),
            200,
        )
        assert got.content == image.manifest.data, describe(got)
        assert got.headers.get("docker-content-digest") == image.manifest.digest, describe(got)
    assert len(workers_of(server)) == 2, "a worker died during the test"


@pytest.mark.parametrize(
    ("options", "key"),
    [
        pytest.param(
            {"extra_config": {"storage": {"delete": {"enabled": "yes please"}}}}, "storage.delete.enabled", id="file"
        ),
        pytest.param({"env": {"REGISTRY_HTTP_ADDR": "abc"}}, "http.addr", id="environment"),
    ],
)
def test_wrong_value_exits_2_naming_the_key(servers: Servers, options: dict[str, Any], key: str) -> None:
    result = servers(**options).run()
    assert result.returncode == 2, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert key in lines[0], lines[0]


def test_unimplemented_sections_are_logged_and_ignored(servers: Servers) -> None:
    server = servers(extra_config=UNIMPLEMENTED_SECTIONS)
    server.start()
    log = server.log_path.read_text()
    for section in IGNORED_KEYS:
        said = [line for line in log.splitlines() if section in line.split() and "ignored" in line]
        assert said, f"no log line says section {section!r} is ignored:\n{log}"


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "proxy.example:8443", "X-Forwarded-For": "198.51.100.7"}


@pytest.mark.parametrize(
    ("extra_config", "followed"),
    [(None, True), ({"http": {"trustedproxies": ["192.0.2.1"]}}, False)],
    ids=["loopback-by-default", "loopback-not-listed"],
)
def test_forwarded_headers_are_followed_only_from_trusted_proxies(
    servers: Servers, extra_config: Mapping[str, Any] | None, followed: bool
) -> None:
    """uvicorn's own proxy handling would take X-Forwarded-Proto and -For from 127.0.0.1 whatever http.trustedproxies
    says: the scheme, host and logged client all follow the one key."""
    server = servers(extra_config=extra_config)
    server.start()
    response = expect(fresh("POST", f"{server.url}/v2/e2e/forwarded/blobs/uploads/", headers=FORWARDED), 202)
    base = "https://proxy.example:8443" if followed else server.url
    assert response.headers["location"].startswith(f"{base}/v2/e2e/forwarded/"), describe(response)
    client = "198.51.100.7" if followed else "127.0.0.1"

    def logged() -> bool:
        lines = server.log_path.read_text().splitlines()
        field = f"http.request.remoteaddr={client}"
        return any(field in line.split() and "/v2/e2e/forwarded/" in line for line in lines)

    wait_until(logged, what=f"an access log line from {client}", daemon=server.daemon, timeout=10)


def test_no_config_serves_from_the_working_directory(servers: Servers, tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    server = servers(config_file=False, cwd=cwd)
    server.start()
    expect(fresh("GET", f"{server.url}/v2/"), 200)

    blob = Blob("application/octet-stream", os.urandom(10_000))
    pushed = fresh(
        "POST",
        f"{server.url}/v2/e2e/noconfig/blobs/uploads/",
        params={"digest": blob.digest},
        content=blob.data,
        headers={"content-type": "application/octet-stream"},
    )
    expect(pushed, 201)
    encoded = blob.digest.removeprefix("sha256:")
    assert (cwd / "data" / "registry.db").is_file(), sorted(map(str, cwd.rglob("*")))
    stored = cwd / "data/docker/registry/v2/blobs/sha256" / encoded[:2] / encoded / "data"
    assert stored.is_file(), sorted(map(str, cwd.rglob("*")))
    assert stored.read_bytes() == blob.data


# uvicorn >= 0.29 re-raises the signal after its graceful shutdown (Server.capture_signals), so a single-process
# `registry serve` dies *by* SIGTERM (status -15, 143 in a shell) instead of exiting 0; the fix belongs in
# registry/cli.py serve(). strict: this turns into a failure once fixed, so the mark cannot outlive the bug.


@pytest.mark.parametrize("args", [pytest.param([], id="single"), pytest.param(["--workers", "2"], id="workers")])
def test_sigterm_while_idle_exits_0(servers: Servers, args: Sequence[str]) -> None:
    server = servers(args=args)
    server.start()
    expected = 2 if args else 0
    wait_until(lambda: len(workers_of(server)) == expected, what=f"{expected} workers", daemon=server.daemon)
    workers = workers_of(server)

    began = time.monotonic()
    status = server.stop(timeout=EXIT_TIMEOUT)
    took = time.monotonic() - began
    assert status == 0, f"exit status {status} after SIGTERM ({took:.1f}s; negative: killed by that signal)"
    assert took < EXIT_TIMEOUT
    wait_until(lambda: not any(alive(pid) for pid in workers), what="workers gone after SIGTERM", timeout=5)


def test_blob_get_whole_and_ranges_from_the_serving_process(registry_server: RegistryServer) -> None:
    """Blobs over 256 KiB leave by sendfile(2) on plain TCP (the ASGI zero-copy extension of our protocol): the bytes,
    their length and the connection's next response must be exactly right, whole and by range."""
    data = os.urandom(3 * 1024 * 1024 + 17)
    blob = Blob("application/octet-stream", data)
    with registry_server.client() as client:
        client.push_blob("e2e/sendfile", blob)
        url = f"/v2/e2e/sendfile/blobs/{blob.digest}"
        whole = expect(client.http.get(url), 200)
        assert whole.content == data and whole.headers["content-length"] == str(len(data))
        part = expect(client.http.get(url, headers={"range": "bytes=1000-2000999"}), 206)
        assert part.content == data[1000:2001000]
        assert part.headers["content-range"] == f"bytes 1000-2000999/{len(data)}"
        tail = expect(client.http.get(url, headers={"range": "bytes=-4096"}), 206)
        assert tail.content == data[-4096:]
        assert expect(client.http.get("/v2/"), 200).json() == {}  # the keep-alive connection is still in step
