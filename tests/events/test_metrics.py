"""Prometheus metrics in one process (``registry.events.metrics``): their names and labels after real pushes and
pulls, storage and database latency, collector runs; nothing recorded when metrics are off."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from registry.events import request_metrics
from registry.events.request_metrics import TALLY, RequestTally
from registry.events.requests import RequestRecord
from registry.events.storage_metrics import MeasuredBackend, measured
from registry.gc.collector import Collector
from registry.handlers.base import Services
from storage_backends import LocalFiles, PathNotFound, StorageError, create_backend
from storage_backends.inmemory import InMemoryBackend
from tests.api_helpers import app_of, client_on, push_blob, push_image
from tests.conftest import make_config

METRICS_ON = {"REGISTRY_HTTP_DEBUG_ADDR": "127.0.0.1:5001", "REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED": "true"}
GC_NOW = {"REGISTRY_STORAGE_GC_DELAY": "0s", "REGISTRY_STORAGE_GC_LEASE": "0s", "REGISTRY_STORAGE_GC_ENABLED": "false"}


class Samples:
    """Sample values relative to when it was made: the metrics are this process's, shared by every test."""

    def __init__(self) -> None:
        self.before = self.now()

    @staticmethod
    def now() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        TALLY.flush()  # what a worker does every second
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for metric in REGISTRY.collect()
            for sample in metric.samples
        }

    def delta(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return self.now().get(key, 0.0) - self.before.get(key, 0.0)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with client_on(make_config(tmp_path, "filesystem", **METRICS_ON, **GC_NOW)) as client:
        yield client


def requests(samples: Samples, handler: str, method: str, code: str) -> float:
    return samples.delta("registry_http_requests_total", handler=handler, method=method, code=code)


async def test_requests_counted_by_route_name_method_and_status(client: httpx.AsyncClient) -> None:
    samples = Samples()
    body, digest = await push_image(client, "team/app", "v1")
    assert (await client.get(f"/v2/team/app/manifests/{digest}")).status_code == 200
    assert (await client.head("/v2/team/app/manifests/v1")).status_code == 200
    assert (await client.get("/v2/team/app/manifests/missing")).status_code == 404
    assert (await client.get("/nowhere")).status_code == 404

    assert requests(samples, "uploads", "POST", "201") == 2  # config and layer, each one monolithic POST
    assert requests(samples, "manifest_put", "PUT", "201") == 1
    assert requests(samples, "manifest", "GET", "200") == 1
    assert requests(samples, "manifest", "HEAD", "200") == 1
    assert requests(samples, "manifest", "GET", "404") == 1
    assert requests(samples, "none", "GET", "404") == 1
    latency = "registry_http_request_duration_seconds_count"
    assert samples.delta(latency, handler="manifest_put", method="PUT", code="201") == 1
    assert samples.delta("registry_http_request_bytes_total", handler="manifest_put") == len(body)
    assert samples.delta("registry_http_response_bytes_total", handler="manifest") >= len(body)


async def test_bytes_in_and_out_of_a_blob(client: httpx.AsyncClient) -> None:
    data = b"layer bytes " * 1000
    samples = Samples()
    digest = await push_blob(client, "team/app", data)
    assert (await client.get(f"/v2/team/app/blobs/{digest}")).content == data
    assert samples.delta("registry_http_request_bytes_total", handler="uploads") == len(data)
    assert samples.delta("registry_http_response_bytes_total", handler="blob") == len(data)  # by sendfile


async def test_an_unknown_method_is_one_label(client: httpx.AsyncClient) -> None:
    samples = Samples()
    await client.request("BREW", "/v2/")
    assert requests(samples, "base", "other", "405") == 1


async def test_storage_and_database_latency(client: httpx.AsyncClient) -> None:
    services: Services = app_of(client).state.services
    assert isinstance(services.backend, MeasuredBackend)
    samples = Samples()
    await push_image(client, "team/app", "v1")
    assert (await client.get("/v2/team/app/manifests/v1")).status_code == 200
    storage = "registry_storage_action_seconds_count"
    assert samples.delta(storage, driver="filesystem", action="commit") == 2  # config and layer: a manifest is SQL
    assert samples.delta("registry_database_transaction_seconds_count") >= 3  # an upload's start, end; the manifest


async def test_collector_runs(client: httpx.AsyncClient) -> None:
    orphan = b"never named by a manifest"
    await push_blob(client, "team/app", orphan)
    samples = Samples()
    collector: Collector = app_of(client).state.collector
    await collector.run_once()
    assert samples.delta("registry_gc_runs_total") == 1
    assert samples.delta("registry_gc_run_duration_seconds_count") == 1
    assert samples.delta("registry_gc_reviewed_total", kind="blob") == 1
    assert samples.delta("registry_gc_deleted_total", kind="blob") == 1
    assert samples.delta("registry_gc_deleted_total", kind="manifest") == 0
    assert samples.delta("registry_gc_freed_bytes_total") == len(orphan)


async def test_nothing_is_measured_when_metrics_are_off(tmp_path: Path) -> None:
    async with client_on(make_config(tmp_path, "filesystem")) as plain:
        services: Services = app_of(plain).state.services
        assert not isinstance(services.backend, MeasuredBackend)
        samples = Samples()
        await push_image(plain, "team/app", "v1")
        assert requests(samples, "manifest_put", "PUT", "201") == 0
        assert samples.delta("registry_storage_action_seconds_count", driver="filesystem", action="commit") == 0


# --- the measured backend ---


class Broken(InMemoryBackend):
    async def stat(self, path: str) -> object:  # type: ignore[override]
        raise StorageError(path, "the disk is on fire")


@pytest.fixture
def broken() -> Iterator[MeasuredBackend]:
    backend = measured(Broken())
    assert isinstance(backend, MeasuredBackend)
    yield backend


async def test_a_failed_call_counts_as_an_error_and_a_missing_path_does_not(broken: MeasuredBackend) -> None:
    samples = Samples()
    with pytest.raises(StorageError):
        await broken.stat("somewhere")
    with pytest.raises(PathNotFound):
        await broken.get_content("nowhere")
    assert samples.delta("registry_storage_errors_total", driver="inmemory", action="stat") == 1
    assert samples.delta("registry_storage_errors_total", driver="inmemory", action="get_content") == 0
    assert samples.delta("registry_storage_action_seconds_count", driver="inmemory", action="get_content") == 1


async def test_a_stream_is_one_observation(broken: MeasuredBackend) -> None:
    await broken.put_content("a/file", b"x" * 10)
    samples = Samples()
    assert b"".join([chunk async for chunk in broken.reader("a/file")]) == b"x" * 10
    assert [info.path async for info in broken.walk("a")] == ["a/file"]
    assert samples.delta("registry_storage_action_seconds_count", driver="inmemory", action="read") == 1
    assert samples.delta("registry_storage_action_seconds_count", driver="inmemory", action="walk") == 1
    # the end of a stream is not a failure
    assert samples.delta("registry_storage_errors_total", driver="inmemory", action="read") == 0
    assert samples.delta("registry_storage_errors_total", driver="inmemory", action="walk") == 0


def test_local_files_keep_sendfile(tmp_path: Path) -> None:
    local = measured(create_backend("filesystem", {"rootdirectory": str(tmp_path)}))
    assert isinstance(local, LocalFiles)
    assert not isinstance(measured(InMemoryBackend()), LocalFiles)
    assert measured(local) is local, "measured once"


# --- the request tally ---


def record(duration: float, route: str | None = "manifest", method: str = "GET") -> RequestRecord:
    return RequestRecord(
        method=method, path="/v2/a/manifests/v1", route=route, repository="a", status=200, bytes_in=3, bytes_out=5,
        duration=duration, user=None, request_id="r", remote_addr=None, user_agent=None,
    )  # fmt: skip


def test_a_tally_adds_up_to_what_each_observation_would() -> None:
    samples, tally = Samples(), RequestTally()
    for duration in (0.0005, 0.001, 3.0, 1000.0):
        tally.observe(record(duration, route="tally-test"))
    assert samples.delta("registry_http_requests_total", handler="tally-test", method="GET", code="200") == 0
    tally.flush()
    labels = {"handler": "tally-test", "method": "GET", "code": "200"}
    bucket = "registry_http_request_duration_seconds_bucket"
    assert samples.delta(bucket, le="0.001", **labels) == 2, "a bucket holds what is less than or equal to it"
    assert samples.delta(bucket, le="2.5", **labels) == 2
    assert samples.delta(bucket, le="5.0", **labels) == 3
    assert samples.delta(bucket, le="+Inf", **labels) == 4
    assert samples.delta("registry_http_request_duration_seconds_sum", **labels) == pytest.approx(1003.0015)
    assert samples.delta("registry_http_requests_total", **labels) == 4
    assert samples.delta("registry_http_request_bytes_total", handler="tally-test") == 12
    assert samples.delta("registry_http_response_bytes_total", handler="tally-test") == 20
    tally.flush()
    assert samples.delta("registry_http_requests_total", **labels) == 4, "flushed once"


def test_no_route_and_unknown_methods_are_one_label_each() -> None:
    samples, tally = Samples(), RequestTally()
    tally.observe(record(0.01, route=None, method="BREW"))
    tally.flush()
    assert samples.delta("registry_http_requests_total", handler="none", method="other", code="200") == 1


def test_requests_are_added_up_a_batch_at_a_time_and_the_rest_at_each_flush() -> None:
    samples, tally = Samples(), RequestTally()
    labels = {"handler": "batch-test", "method": "GET", "code": "200"}
    for _ in range(request_metrics.BATCH - 1):
        tally.observe(record(0.01, route="batch-test"))
    assert not tally.pending, "kept as they came"
    tally.observe(record(0.01, route="batch-test"))
    assert tally.pending[("batch-test", "GET", 200)][0] == request_metrics.BATCH, "added up by the one completing it"
    tally.observe(record(0.01, route="batch-test"))
    tally.flush()
    assert samples.delta("registry_http_requests_total", **labels) == request_metrics.BATCH + 1
    assert not tally.pending and not tally.counted
