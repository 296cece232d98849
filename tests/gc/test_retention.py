"""Tag retention (``registry.gc.retention``) on SQLite and PostgreSQL: keep the last N pushed, keep what a pattern
names, delete what is older than a duration, never an immutable tag; a dry run deletes nothing; a deleted tag's
manifest is queued for the collector."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from registry.db import queries, retention_queries
from registry.db.engine import Database
from registry.db.models import gc_manifest_reviews, manifests, repositories, tags
from registry.db.sessions import Writer
from registry.gc import retention
from registry.gc.policies import Policies
from tests.api_helpers import app_of, manifest_status, push_image
from tests.conftest import make_config, started_client
from tests.events.notifying import endpoint, notifying, outbox_events

HOUR = 3600.0


@asynccontextmanager
async def registry(
    tmp_path: Path, database_url: str, policies: list[dict[str, Any]], immutable: list[dict[str, Any]] | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, Database, Policies]]:
    """A started registry whose ``retention.policies`` (and ``immutable``) come from the environment."""
    env = {"REGISTRY_DATABASE_URL": database_url, "REGISTRY_RETENTION_POLICIES": json.dumps(policies)}
    if immutable is not None:
        env["REGISTRY_IMMUTABLE"] = json.dumps(immutable)
    config = make_config(tmp_path, "inmemory", **env)
    async with started_client(config) as client:
        yield client, app_of(client).state.services.db, Policies.from_config(config)


async def push_tags(client: httpx.AsyncClient, repo: str, names: Iterable[str]) -> dict[str, str]:
    """Each tag on a manifest of its own; their digests."""
    return {name: (await push_image(client, repo, name, seed=name))[1] for name in names}


async def set_pushed(db: Database, repo: str, ages: dict[str, float]) -> None:
    """Make each tag look last pushed that many hours ago."""
    now = datetime.now(UTC)

    async def work(session: Writer) -> None:
        repo_id = select(repositories.c.id).where(repositories.c.name == repo).scalar_subquery()
        for tag, hours in ages.items():
            pushed = now - timedelta(hours=hours)
            await session.execute(
                update(tags).where(tags.c.repository_id == repo_id, tags.c.name == tag).values(updated_at=pushed)
            )

    await db.write(work)


async def surviving(client: httpx.AsyncClient, repo: str, names: Iterable[str]) -> list[str]:
    return [name for name in names if await manifest_status(client, repo, name) == 200]


async def test_keep_last_keeps_the_most_recently_pushed(tmp_path: Path, database_url: str) -> None:
    names = ["a", "b", "c", "d", "e"]
    async with registry(tmp_path, database_url, [{"repositories": ["ci/**"], "keep": {"last": 2}}]) as (c, db, p):
        await push_tags(c, "ci/app", names)
        await set_pushed(db, "ci/app", {"a": 1, "b": 5, "c": 2, "d": 4, "e": 3})
        deleted = await retention.apply_retention(db, p, dry_run=False)
        assert sorted(deleted) == [("ci/app", "b"), ("ci/app", "d"), ("ci/app", "e")]
        assert await surviving(c, "ci/app", names) == ["a", "c"]
        assert await retention.apply_retention(db, p, dry_run=False) == []  # applying again changes nothing


async def test_keep_last_breaks_ties_by_push_order(tmp_path: Path, database_url: str) -> None:
    names = ["z", "y", "x"]  # pushed in this order, then given the same time: the later pushes are the more recent
    async with registry(tmp_path, database_url, [{"repositories": ["app"], "keep": {"last": 2}}]) as (c, db, p):
        await push_tags(c, "app", names)
        await set_pushed(db, "app", dict.fromkeys(names, 10.0))
        assert await retention.apply_retention(db, p, dry_run=False) == [("app", "z")]


async def test_keep_patterns_win_over_olderthan(tmp_path: Path, database_url: str) -> None:
    policy = {"repositories": ["team/*"], "keep": {"tags": ["^v[0-9]+", "^latest$"]}, "delete": {"olderthan": "24h"}}
    names = ["v1", "v2.0", "latest", "latest-rc", "dev-1", "dev-2"]
    async with registry(tmp_path, database_url, [policy]) as (c, db, p):
        await push_tags(c, "team/web", names)
        await set_pushed(db, "team/web", {"v1": 100, "v2.0": 100, "latest": 100, "latest-rc": 100, "dev-1": 30})
        deleted = await retention.apply_retention(db, p, dry_run=False)
        assert sorted(deleted) == [("team/web", "dev-1"), ("team/web", "latest-rc")]
        assert await surviving(c, "team/web", names) == ["v1", "v2.0", "latest", "dev-2"]


async def test_olderthan_and_keep_last_together(tmp_path: Path, database_url: str) -> None:
    # the 2 latest stay however old they are; of the others, only those not pushed within 24h go
    policy = {"repositories": ["ci/**"], "keep": {"last": 2}, "delete": {"olderthan": "24h"}}
    names = ["new1", "new2", "new3", "old1", "old2"]
    async with registry(tmp_path, database_url, [policy]) as (c, db, p):
        await push_tags(c, "ci/a/b", names)
        await set_pushed(db, "ci/a/b", {"new1": 1, "new2": 2, "new3": 3, "old1": 48, "old2": 72})
        assert sorted(await retention.apply_retention(db, p, dry_run=False)) == [("ci/a/b", "old1"), ("ci/a/b", "old2")]
        await set_pushed(db, "ci/a/b", {"new1": 100, "new2": 200, "new3": 300})
        assert await retention.apply_retention(db, p, dry_run=False) == [("ci/a/b", "new3")]
        assert await surviving(c, "ci/a/b", names) == ["new1", "new2"]


async def test_dry_run_lists_and_deletes_nothing(tmp_path: Path, database_url: str) -> None:
    policy = {"repositories": ["ci/**"], "delete": {"olderthan": "1h"}}
    async with registry(tmp_path, database_url, [policy]) as (c, db, p):
        await push_tags(c, "ci/app", ["old", "new"])
        await set_pushed(db, "ci/app", {"old": 2})
        assert await retention.apply_retention(db, p, dry_run=True) == [("ci/app", "old")]
        assert await surviving(c, "ci/app", ["old", "new"]) == ["old", "new"]
        assert await retention.apply_retention(db, p, dry_run=False) == [("ci/app", "old")]


async def test_only_the_first_matching_policy_applies(tmp_path: Path, database_url: str) -> None:
    policies = [
        {"repositories": ["ci/keep/**"], "delete": {"untagged": "1h"}},  # no tag rule: its tags all stay
        {"repositories": ["ci/**"], "keep": {"last": 0}},
    ]
    async with registry(tmp_path, database_url, policies) as (c, db, p):
        for repo in ("ci/keep/app", "ci/app", "other/app"):
            await push_tags(c, repo, ["t1", "t2"])
        deleted = await retention.apply_retention(db, p, dry_run=False)
        assert sorted(deleted) == [("ci/app", "t1"), ("ci/app", "t2")]
        assert await surviving(c, "ci/keep/app", ["t1", "t2"]) == ["t1", "t2"]
        assert await surviving(c, "other/app", ["t1", "t2"]) == ["t1", "t2"]


async def test_retention_never_deletes_an_immutable_tag(tmp_path: Path, database_url: str) -> None:
    policy = {"repositories": ["**"], "keep": {"last": 0}}
    immutable = [{"repositories": ["prod/*"], "tags": ["v*"]}]
    async with registry(tmp_path, database_url, [policy], immutable) as (c, db, p):
        await push_tags(c, "prod/app", ["v1", "v2", "latest"])
        await set_pushed(db, "prod/app", {"v1": 1000, "v2": 1000, "latest": 1000})
        assert await retention.apply_retention(db, p, dry_run=False) == [("prod/app", "latest")]
        assert await surviving(c, "prod/app", ["v1", "v2", "latest"]) == ["v1", "v2"]


async def test_a_deleted_tag_queues_its_manifest_for_the_collector(tmp_path: Path, database_url: str) -> None:
    async with registry(tmp_path, database_url, [{"repositories": ["app"], "keep": {"last": 1}}]) as (c, db, p):
        digests = await push_tags(c, "app", ["old", "new"])
        await set_pushed(db, "app", {"old": 1})

        async def clear(session: Writer) -> None:  # whatever the pushes queued
            await session.execute(gc_manifest_reviews.delete())

        await db.write(clear)
        assert await retention.apply_retention(db, p, dry_run=False) == [("app", "old")]
        async with db.read() as session:
            query = select(manifests.c.digest).join(
                gc_manifest_reviews, gc_manifest_reviews.c.manifest_id == manifests.c.id
            )
            queued = list((await session.scalars(query)).all())
        assert queued == [digests["old"]]


async def test_a_tag_pushed_again_after_it_was_read_stays(tmp_path: Path, database_url: str) -> None:
    async with registry(tmp_path, database_url, [{"repositories": ["app"], "delete": {"olderthan": "1h"}}]) as (
        c,
        db,
        _,
    ):
        await push_tags(c, "app", ["moving", "still"])
        await set_pushed(db, "app", {"moving": 2, "still": 2})
        async with db.read() as session:
            repo_id = await queries.repository_id(session, "app")
            assert repo_id is not None
            rows = await retention_queries.old_tags(
                session, repo_id, pushed_before=datetime.now(UTC), earlier_than=None, after=None, limit=10
            )
        assert [row.name for row in rows] == ["moving", "still"]
        await push_image(c, "app", "moving", seed="again")  # moved between the read and the delete
        assert await db.write(retention._deleter("app", rows)) == ["still"]
        assert await surviving(c, "app", ["moving", "still"]) == ["moving"]


async def test_many_repositories_and_tags_are_paged(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "REPOSITORY_PAGE", 2)
    monkeypatch.setattr(retention, "TAG_PAGE", 2)
    monkeypatch.setattr(retention, "DELETE_BATCH", 2)
    names = [f"t{i}" for i in range(7)]
    repos = ["ci/a", "ci/b", "ci/c", "ci/d", "ci/e"]
    async with registry(tmp_path, database_url, [{"repositories": ["ci/*"], "keep": {"last": 2}}]) as (c, db, p):
        for repo in repos:
            await push_tags(c, repo, names)
            await set_pushed(db, repo, {name: 10.0 - i for i, name in enumerate(names)})  # t6 the latest
        await push_tags(c, "dev/x", names)
        deleted = await retention.apply_retention(db, p, dry_run=False)
        assert sorted(deleted) == [(repo, name) for repo in repos for name in names[:5]]
        for repo in repos:
            assert await surviving(c, repo, names) == ["t5", "t6"]
        assert await surviving(c, "dev/x", names) == names


async def test_scheduled_retention_runs_then_stops(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with registry(tmp_path, database_url, [{"repositories": ["app"], "keep": {"last": 1}}]) as (c, db, p):
        await push_tags(c, "app", ["old", "new"])
        await set_pushed(db, "app", {"old": 1})
        stop = asyncio.Event()
        task = asyncio.create_task(retention.retention_until(stop, db, p, interval=0.05))
        for _ in range(200):
            if await manifest_status(c, "app", "old") == 404:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)
        assert await surviving(c, "app", ["old", "new"]) == ["new"]


async def test_the_server_applies_the_policies_every_interval(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"REGISTRY_DATABASE_URL": database_url, "REGISTRY_RETENTION_INTERVAL": "50ms"}
    env["REGISTRY_RETENTION_POLICIES"] = json.dumps([{"repositories": ["app"], "delete": {"olderthan": "1h"}}])
    async with started_client(make_config(tmp_path, "inmemory", **env)) as client:
        await push_tags(client, "app", ["old", "new"])
        await set_pushed(app_of(client).state.services.db, "app", {"old": 2})
        for _ in range(200):
            if await manifest_status(client, "app", "old") == 404:
                break
            await asyncio.sleep(0.02)
        assert await surviving(client, "app", ["old", "new"]) == ["new"]


async def test_a_read_only_server_applies_no_policy(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Policies] = []

    async def record(stop: asyncio.Event, db: Database, policies: Policies, **options: Any) -> None:
        started.append(policies)

    monkeypatch.setattr("registry.app.retention_until", record)
    policies = json.dumps([{"repositories": ["app"], "delete": {"olderthan": "1h"}}])
    env = {"REGISTRY_DATABASE_URL": database_url, "REGISTRY_RETENTION_POLICIES": policies}
    async with started_client(make_config(tmp_path, "inmemory", **env)):
        pass
    assert len(started) == 1
    env["REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED"] = "true"
    async with started_client(make_config(tmp_path, "inmemory", **env)):
        pass
    assert len(started) == 1


async def test_the_server_reports_each_tag_retention_deletes(tmp_path: Path, database_url: str) -> None:
    policies = json.dumps([{"repositories": ["app"], "delete": {"olderthan": "1h"}}])
    config = notifying(
        tmp_path,
        database_url,
        endpoint("hook"),
        REGISTRY_RETENTION_INTERVAL="50ms",
        REGISTRY_RETENTION_POLICIES=policies,
    )
    async with started_client(config) as client:
        await push_tags(client, "app", ["old", "new"])
        await set_pushed(app_of(client).state.services.db, "app", {"old": 2})
        for _ in range(200):
            if await manifest_status(client, "app", "old") == 404:
                break
            await asyncio.sleep(0.02)
        deletes = [event for event in await outbox_events(client) if event["action"] == "delete"]
    assert [event["target"] for event in deletes] == [{"repository": "app", "tag": "old"}]
    assert "request" not in deletes[0], "no request caused it"
