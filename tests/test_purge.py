"""distribution's ``storage.maintenance.uploadpurging``: idle upload sessions and their data are removed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from registry.config import Config
from registry.content import paths, purge
from registry.content.purge import purge_once
from registry.db import queries
from registry.handlers.base import Services
from storage_backends import PathNotFound
from tests.conftest import BASE_URL, make_config, started_client


async def _services(client: httpx.AsyncClient) -> Services:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, Starlette)
    found: Services = app.state.services
    return found


async def _open_session(client: httpx.AsyncClient) -> str:
    response = await client.post("/v2/purge/me/blobs/uploads/")
    assert response.status_code == 202
    location = response.headers["location"].removeprefix(BASE_URL)
    assert (await client.patch(location, content=b"partial data")).status_code == 202
    return location


async def test_purge_removes_idle_sessions_and_their_data(tmp_path: Path, database_url: str) -> None:
    config: Config = make_config(tmp_path, "filesystem", REGISTRY_DATABASE_URL=database_url)
    async with started_client(config) as client:
        location = await _open_session(client)
        uploads_dir = tmp_path / "data/docker/registry/v2/uploads"
        assert any(uploads_dir.iterdir())
        removed = await purge_once((await _services(client)).uploads, age_seconds=-60, dryrun=False)
        assert len(removed) == 1
        assert (await client.get(location)).status_code == 404
        assert not any(uploads_dir.iterdir())


async def test_purge_removes_old_upload_data_no_session_owns(config: Config) -> None:
    # a process that died between deleting a session's row and its data leaves an orphan only a storage sweep finds
    orphan, fresh = str(uuid.uuid4()), str(uuid.uuid4())
    async with started_client(config) as client:
        services = await _services(client)
        await services.backend.put_content(paths.upload_data_path(orphan), b"orphaned bytes")
        location = await _open_session(client)
        assert await purge_once(services.uploads, age_seconds=3600, dryrun=False) == []
        assert await purge_once(services.uploads, age_seconds=-60, dryrun=False) != []
        with pytest.raises(PathNotFound):
            await services.backend.stat(paths.upload_dir(orphan))
        assert (await client.get(location)).status_code == 404
        await services.backend.put_content(paths.upload_data_path(fresh), b"not old enough")
        assert await purge_once(services.uploads, age_seconds=3600, dryrun=False) == []
        assert (await services.backend.stat(paths.upload_data_path(fresh))).size == 14


async def test_purge_keeps_recent_sessions_and_dry_run_removes_nothing(tmp_path: Path, database_url: str) -> None:
    async with started_client(make_config(tmp_path, "inmemory", REGISTRY_DATABASE_URL=database_url)) as client:
        location = await _open_session(client)
        uploads = (await _services(client)).uploads
        assert await purge_once(uploads, age_seconds=3600, dryrun=False) == []
        assert len(await purge_once(uploads, age_seconds=-60, dryrun=True)) == 1
        status = await client.get(location)
        assert status.status_code == 204
        assert status.headers["range"] == "0-11"


async def test_scheduled_purge_runs_then_stops_when_the_app_shuts_down(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "REGISTRY_DATABASE_URL": database_url,
        "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE": "1ns",
        "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL": "50ms",
    }
    config = make_config(tmp_path, "filesystem", **env)
    ran = asyncio.Event()
    real_purge_once = purge.purge_once

    async def observed(*args: Any, **kwargs: Any) -> list[str]:
        result = await real_purge_once(*args, **kwargs)
        ran.set()
        return result

    monkeypatch.setattr(purge, "purge_once", observed)
    async with started_client(config) as client:
        await asyncio.wait_for(ran.wait(), timeout=10)
        assert (await client.get("/v2/")).status_code == 200
    # leaving the loop shut the app down: the purger was stopped and awaited, so nothing is left running
    assert [t for t in asyncio.all_tasks() if "purge_until" in repr(t.get_coro())] == []


async def test_concurrent_purges_take_each_stale_session_once(tmp_path: Path, database_url: str) -> None:
    """Workers and replicas all purge: each stale session is deleted (its data too) by exactly one of them."""
    config = make_config(tmp_path, "filesystem", REGISTRY_DATABASE_URL=database_url)
    async with started_client(config) as client:
        sessions = {(await _open_session(client)).rsplit("/", 1)[-1] for _ in range(30)}
        db = (await _services(client)).db
        later = datetime.now(UTC) + timedelta(seconds=1)
        first, second = await asyncio.gather(
            *(db.write(lambda s: queries.delete_stale_uploads(s, later)) for _ in range(2))
        )
    assert set(first) | set(second) == sessions
    assert not set(first) & set(second)
