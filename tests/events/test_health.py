"""Health checks (``registry.events.health``) as distribution's: a failing check turns every request into 503
UNAVAILABLE "health check failed: please see /debug/health", after ``threshold`` failures in a row; the first
success brings the registry back. Workers publish what fails for the debug server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from registry.config import CheckConfig
from registry.events.health import DETAIL, Health, publish_to, read_published
from tests.api_helpers import app_of, assert_error, client_on, push_image
from tests.conftest import make_config
from tests.faultproxy import FOREVER, ErrorReply, FaultProxy
from tests.s3server import MotoServer

STORAGE_CHECK = {
    "REGISTRY_HEALTH_STORAGEDRIVER_ENABLED": "true",
    "REGISTRY_HEALTH_STORAGEDRIVER_INTERVAL": "1h",  # probed once at start, then by the test (probe_all)
}


def health_of(client: httpx.AsyncClient) -> Health:
    found: Health | None = app_of(client).state.health
    assert found is not None
    return found


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with client_on(make_config(tmp_path, "filesystem", **STORAGE_CHECK)) as client:
        yield client


def assert_unavailable(response: httpx.Response) -> None:
    assert assert_error(response, 503, "UNAVAILABLE")["detail"] == DETAIL
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert "Retry-After" in response.headers


async def test_broken_storage_turns_the_api_into_503_and_back(client: httpx.AsyncClient, tmp_path: Path) -> None:
    health = health_of(client)
    await health.probe_all()
    assert (await client.get("/v2/")).status_code == 200
    _, digest = await push_image(client, "team/app", "v1")

    data = tmp_path / "data"
    data.rename(tmp_path / "away")
    data.write_text("a file where the storage root was: nothing can be written under it")
    await health.probe_all()
    assert set(health.failing) == {"storagedriver_filesystem"}
    assert_unavailable(await client.get("/v2/"))
    assert_unavailable(await client.get(f"/v2/team/app/manifests/{digest}"))
    assert (await client.head("/v2/team/app/manifests/v1")).status_code == 503

    data.unlink()
    (tmp_path / "away").rename(data)
    await health.probe_all()
    assert health.failing == {}
    assert (await client.get("/v2/")).status_code == 200
    assert (await client.get(f"/v2/team/app/manifests/{digest}")).status_code == 200


async def test_unreachable_s3_turns_the_api_into_503_and_back(
    tmp_path: Path, moto_s3: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no retries: each probe meets the fault once
    with FaultProxy(moto_s3.endpoint) as proxy:
        params = moto_s3.driver_params(moto_s3.create_bucket(), regionendpoint=proxy.url, rootdirectory="/registry")
        s3 = {f"REGISTRY_STORAGE_S3_{key.upper()}": str(value).lower() for key, value in params.items()}
        async with client_on(make_config(tmp_path, "s3", **s3, **STORAGE_CHECK)) as client:
            health = health_of(client)
            await health.probe_all()
            assert (await client.get("/v2/")).status_code == 200
            proxy.add(ErrorReply(503, "ServiceUnavailable", "S3 is down"), times=FOREVER)
            await health.probe_all()
            assert set(health.failing) == {"storagedriver_s3"}
            assert_unavailable(await client.get("/v2/"))
            proxy.clear()
            await health.probe_all()
            assert (await client.get("/v2/")).status_code == 200


async def test_a_read_only_registry_checks_without_writing(tmp_path: Path) -> None:
    config = make_config(tmp_path, "filesystem", REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED="true", **STORAGE_CHECK)
    async with client_on(config) as client:
        await health_of(client).probe_all()
        assert (await client.get("/v2/")).status_code == 200
        assert not (tmp_path / "data" / "docker" / "registry" / "v2" / "_health").exists()


async def test_a_broken_database_turns_the_api_into_503(tmp_path: Path) -> None:
    config = make_config(tmp_path, "inmemory", REGISTRY_HEALTH_DATABASE_ENABLED="true")
    async with client_on(config) as client:
        health = health_of(client)
        await health.probe_all()
        assert (await client.get("/v2/")).status_code == 200
        await app_of(client).state.services.db.dispose()  # its reader is gone: every query fails
        await health.probe_all()
        assert list(health.failing) == ["database"]
        assert_unavailable(await client.get("/v2/"))


async def test_no_check_no_gate(tmp_path: Path) -> None:
    async with client_on(make_config(tmp_path, "inmemory")) as client:
        assert app_of(client).state.health is None


# --- thresholds, as distribution's thresholdUpdater ---


class Flaky:
    def __init__(self) -> None:
        self.broken = False

    async def __call__(self) -> None:
        if self.broken:
            raise OSError("no route to storage")


async def test_failing_after_threshold_failures_in_a_row_and_passing_at_the_first_success() -> None:
    published: list[dict[str, str]] = []
    health, check = Health(published.append), Flaky()
    health.add("storagedriver_s3", check, CheckConfig(enabled=True, interval=60.0, threshold=3))
    check.broken = True
    for _ in range(2):
        await health.probe_all()
    assert health.failing == {}
    await health.probe_all()
    assert health.failing == {"storagedriver_s3": "no route to storage"}
    for _ in range(5):
        await health.probe_all()  # capped at the threshold: one success is enough
    check.broken = False
    await health.probe_all()
    assert health.failing == {}
    assert published == [{"storagedriver_s3": "no route to storage"}, {}], "published on change only"


async def test_threshold_zero_fails_at_the_first_failure() -> None:
    health, check = Health(), Flaky()
    health.add("database", check, CheckConfig(enabled=True, interval=60.0, threshold=0))
    check.broken = True
    await health.probe_all()
    assert health.failing == {"database": "no route to storage"}


# --- what workers publish for the debug server ---


def test_published_by_live_workers_merged_and_a_dead_workers_removed(tmp_path: Path) -> None:
    (tmp_path / "health").mkdir()
    publish_to(str(tmp_path))({"storagedriver_filesystem": "read-only file system"})
    dead = tmp_path / "health" / f"{_dead_pid()}.json"
    dead.write_text('{"database": "gone"}')
    assert read_published(str(tmp_path)) == {"storagedriver_filesystem": "read-only file system"}
    assert not dead.exists()
    publish_to(str(tmp_path))({})
    assert read_published(str(tmp_path)) == {}


def _dead_pid() -> int:
    """A pid no process has: a child's that has exited and been reaped."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(done.stdout)
