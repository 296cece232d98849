"""The debug server's app (``registry.events.debug``): distribution's ``/debug/health`` over what the workers
publish, and the Prometheus exposition at ``http.debug.prometheus.path`` with what the database holds; several
workers' samples added up through prometheus-client's multiprocess directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from registry.config import Config
from registry.events.debug import MULTIPROCESS_ENV, debug_app
from registry.events.health import publish_to
from registry.events.metrics import exposition
from tests.api_helpers import client_on, push_image, start_upload
from tests.conftest import make_config

METRICS_ON = {"REGISTRY_HTTP_DEBUG_ADDR": "127.0.0.1:5001", "REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED": "true"}


@asynccontextmanager
async def debug_client(
    config: Config, directory: Path, multiprocess: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    (directory / "health").mkdir(parents=True, exist_ok=True)
    app = debug_app(config, str(directory), multiprocess)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://debug") as c:
        yield c


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_debug_health_is_distributions(tmp_path: Path) -> None:
    async with debug_client(make_config(tmp_path, "inmemory", **METRICS_ON), tmp_path / "debug") as debug:
        healthy = await debug.get("/debug/health")
        assert (healthy.status_code, healthy.json()) == (200, {})
        assert healthy.headers["content-type"].startswith("application/json")
        publish_to(str(tmp_path / "debug"))({"storagedriver_filesystem": "read-only file system"})
        failing = await debug.get("/debug/health")
        assert (failing.status_code, failing.json()) == (503, {"storagedriver_filesystem": "read-only file system"})
        assert (await debug.post("/debug/health")).status_code == 404
        assert (await debug.get("/v2/")).status_code == 404


async def test_metrics_with_what_the_database_holds(tmp_path: Path, database_url: str) -> None:
    config = make_config(tmp_path, "filesystem", REGISTRY_DATABASE_URL=database_url, **METRICS_ON)
    async with client_on(config) as client:
        await push_image(client, "team/app", "v1")
        await push_image(client, "team/other", "v1", seed="2")
        await start_upload(client, "team/app")
    async with debug_client(config, tmp_path / "debug") as debug:
        response = await debug.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(response.text)
    assert found["registry_stored_manifests", ()] == 2
    assert found["registry_stored_blobs", ()] == 4
    assert found["registry_stored_repositories", ()] == 2
    assert found["registry_uploads_in_progress", ()] == 1
    assert found["registry_stored_blob_bytes", ()] > 0
    pushes = ("registry_http_requests_total", (("code", "201"), ("handler", "manifest_put"), ("method", "PUT")))
    assert found[pushes] >= 2  # this process's: one worker


async def test_prometheus_path_and_switch(tmp_path: Path) -> None:
    custom = make_config(tmp_path, "inmemory", **METRICS_ON, REGISTRY_HTTP_DEBUG_PROMETHEUS_PATH="/prom")
    async with debug_client(custom, tmp_path / "a") as debug:
        assert (await debug.get("/prom")).status_code == 200
        assert (await debug.get("/metrics")).status_code == 404
    off = make_config(tmp_path, "inmemory", REGISTRY_HTTP_DEBUG_ADDR="127.0.0.1:5001")
    async with debug_client(off, tmp_path / "b") as debug:
        assert (await debug.get("/metrics")).status_code == 404
        assert (await debug.get("/debug/health")).status_code == 200


WORKER = """
from registry.events.request_metrics import TALLY
from registry.events.requests import RequestRecord

record = RequestRecord(
    method="GET", path="/v2/a/manifests/v1", route="manifest", repository="a", status=200, bytes_in=0,
    bytes_out=512, duration=0.002, user=None, request_id="r", remote_addr=None, user_agent=None,
)
for _ in range({count}):
    TALLY.observe(record)
TALLY.flush()
"""


def test_several_workers_samples_add_up(tmp_path: Path) -> None:
    """What ``registry serve`` sets up with several workers: each process writes its own values in the directory,
    the debug server reads them all."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    env = {**os.environ, MULTIPROCESS_ENV: str(directory)}
    for count in (2, 3):
        subprocess.run([sys.executable, "-c", WORKER.format(count=count)], env=env, check=True)
    found = samples(exposition(str(directory), None).decode())
    labels = (("code", "200"), ("handler", "manifest"), ("method", "GET"))
    assert found["registry_http_requests_total", labels] == 5
    assert found["registry_http_request_duration_seconds_count", labels] == 5
    assert found["registry_http_response_bytes_total", (("handler", "manifest"),)] == 5 * 512
