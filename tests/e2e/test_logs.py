"""The real `registry serve` with `log.formatter: json` and two workers: every line on stderr is a JSON object with
`log.fields`, one access line per request with its route, repository, status, bytes, user and request id, uvicorn's
own access log silent, and no password anywhere in the output."""

from __future__ import annotations

import base64
import contextlib
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth.helpers import write_htpasswd

from .client import RegistryClient, expect
from .images import make_oci_image, tar_files
from .procs import STOP_TIMEOUT, wait_until
from .server import RegistryServer, needs_our_server, server_kind

pytestmark = [pytest.mark.e2e, needs_our_server("log.formatter json with our access-log fields")]

PASSWORD = "e2e-s3cret-pw"
FIELDS = {"service": "registry-e2e", "environment": "test"}


@contextlib.contextmanager
def running(server: RegistryServer) -> Iterator[subprocess.Popen[bytes]]:
    """The server with its stdout and stderr in separate files (`stdout.log`, `stderr.log` under its root)."""
    with (server.root / "stdout.log").open("wb") as out, (server.root / "stderr.log").open("wb") as err:
        proc = subprocess.Popen(
            server.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=server.env, cwd=server.cwd
        )
    try:
        wait_until(lambda: _answers(server.url) or proc.poll() is not None, what="registry server with json logs")
        assert proc.poll() is None, (server.root / "stderr.log").read_text()
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/", timeout=2, trust_env=False).status_code == 401
    except httpx.HTTPError:
        return False


def test_json_logs_from_two_workers_have_the_access_fields_and_no_secret(tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": PASSWORD})
    extra: dict[str, Any] = {
        "log": {"formatter": "json", "fields": FIELDS},
        "auth": {"htpasswd": {"realm": "e2e", "path": str(htpasswd)}},
        "http": {"workers": 2},
    }
    server = RegistryServer(tmp_path / "server", server_kind(), extra_config=extra)
    image = make_oci_image([tar_files({"hello.txt": b"hello logs\n"})])
    with running(server), RegistryClient(server.url) as client:
        client.http.auth = httpx.BasicAuth("alice", PASSWORD)
        client.push_image("team/app", image, "v1")
        pulled = client.http.get("/v2/team/app/manifests/v1", headers={"X-Request-Id": "e2e-pull-1"})
        expect(pulled, 200)
        expect(client.http.get("/v2/", auth=httpx.BasicAuth("alice", "wrong-" + PASSWORD)), 401)
    stderr = (server.root / "stderr.log").read_text()
    stdout = (server.root / "stdout.log").read_text()
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert all(line["service"] == "registry-e2e" and line["environment"] == "test" for line in lines)
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # uvicorn's own lines in our format too
    access = [line for line in lines if line["logger"] == "registry.access"]
    assert all(line["msg"] == "response completed" and line["level"] == "info" for line in access)
    [pull] = [line for line in access if line.get("http.request.id") == "e2e-pull-1"]
    assert pulled.headers["X-Request-Id"] == "e2e-pull-1"
    assert (pull["http.request.method"], pull["http.request.route"], pull["vars.name"]) == (
        "GET",
        "manifest",
        "team/app",
    )
    assert (pull["http.response.status"], pull["http.response.written"]) == (200, len(image.manifest.data))
    assert pull["auth.user.name"] == "alice" and pull["http.request.remoteaddr"] == "127.0.0.1"
    assert isinstance(pull["http.response.duration"], float)
    [put] = [line for line in access if line.get("http.request.route") == "manifest_put"]
    assert (put["http.response.status"], put["http.request.read"]) == (201, len(image.manifest.data))
    uploads = [line for line in access if line.get("http.request.route") == "upload_put"]
    assert sorted(line["http.request.read"] for line in uploads) == sorted(len(b.data) for b in image.blobs())
    assert any(line["http.response.status"] == 401 and "auth.user.name" not in line for line in access)
    assert "HTTP/1.1" not in stdout + stderr  # uvicorn's access log is off
    secret = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert PASSWORD not in stdout + stderr and secret not in stdout + stderr
