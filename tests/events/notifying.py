"""Apps with notifications configured, and what their outbox holds."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from registry.config import Config
from registry.db.engine import Database
from registry.db.models import event_outbox
from registry.events.sink import EventSink
from tests.api_helpers import app_of, client_on
from tests.conftest import make_config

DEAD_URL = "http://127.0.0.1:9/events"  # the discard port: nothing listens, a post fails at once
NOW = {"REGISTRY_STORAGE_GC_DELAY": "0s", "REGISTRY_STORAGE_GC_LEASE": "0s", "REGISTRY_STORAGE_GC_ENABLED": "false"}


def endpoint(name: str, url: str = DEAD_URL, **keys: Any) -> dict[str, Any]:
    """An endpoint; a dead one backs off for an hour after its first failure, so its rows stay in the outbox."""
    return {"name": name, "url": url, "threshold": 1, "backoff": "1h", **keys}


def notifying(tmp_path: Path, database_url: str, *endpoints: dict[str, Any], **env: str) -> Config:
    config = make_config(tmp_path, "inmemory", REGISTRY_DATABASE_URL=database_url, **NOW, **env)
    section = {"endpoints": list(endpoints), "events": {"includereferences": True}}
    return replace(config, raw={**config.raw, "notifications": section})


@contextlib.asynccontextmanager
async def notifying_client(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    async with client_on(config) as client:
        yield client


def sink(client: httpx.AsyncClient) -> EventSink:
    found: EventSink = app_of(client).state.services.manifests.events
    return found


def database(client: httpx.AsyncClient) -> Database:
    found: Database = app_of(client).state.services.db
    return found


async def outbox_events(client: httpx.AsyncClient, endpoint_name: str | None = None) -> list[dict[str, Any]]:
    """The events waiting in the outbox (for one endpoint), oldest first."""
    query = select(event_outbox.c.endpoint, event_outbox.c.payload).order_by(event_outbox.c.id)
    async with database(client).read() as session:
        rows = (await session.execute(query)).all()
    return [json.loads(row[1]) for row in rows if endpoint_name in (None, row[0])]


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(action, repository, tag or media type) of each event."""
    return [
        (e["action"], e["target"]["repository"], e["target"].get("tag") or e["target"].get("mediaType", ""))
        for e in events
    ]
