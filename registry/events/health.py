"""Health checks, as distribution's ``health`` package and ``health:`` section: ``storagedriver``, ``file``, ``http``
and ``tcp`` (``registry.events.health_checks``) and, ours, ``database``, each run every ``interval`` by every
worker, failing after ``threshold`` failures in a row (0: at the first) and passing again at the first success.

While any check fails, every request gets distribution's answer, 503 UNAVAILABLE "health check failed: please see
/debug/health" (``HealthGate``; distribution wraps its whole app in ``health.Handler``). A worker publishes what
fails to the serving process's debug directory (``publish_to``), where the debug server reads every live worker's
view (``read_published``) for ``/debug/health``.

The storage check writes ``paths.health_probe_path()`` (a storage that takes it takes a push: a full, read-only or
unreachable storage fails it); a read-only registry only stats the root, a missing one being an answer, as
distribution's stat of ``/``. The database check reads a table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import literal, select
from starlette.types import ASGIApp, Receive, Scope, Send

from registry.clock import stopped_within
from registry.config import CheckConfig, Config, HealthConfig
from registry.content import paths
from registry.db.engine import Database
from registry.db.models import repositories
from registry.errors import ErrorCode, error_response
from registry.events.health_checks import Check, listed_checks
from storage_backends import PathNotFound, StorageBackend

log = logging.getLogger("registry.health")
DETAIL = "health check failed: please see /debug/health"


class Periodic:
    """One check and its state: distribution's threshold updater (failures in a row, capped at the threshold)."""

    def __init__(self, name: str, check: Check, settings: CheckConfig) -> None:
        self.name, self.check = name, check
        self.interval, self.threshold = settings.interval, max(settings.threshold, 1)
        self.failures = 0
        self.error = ""

    async def probe(self) -> None:
        try:
            await asyncio.wait_for(self.check(), self.interval)
        except Exception as exc:
            self.failures = min(self.failures + 1, self.threshold)
            self.error = _describe(exc)
        else:
            self.failures = 0

    @property
    def failing(self) -> bool:
        return self.failures >= self.threshold


def _describe(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return " ".join(str(exc).split()) or type(exc).__name__


class Health:
    """A worker's checks and what fails now (``failing``: check name to error, read by every request)."""

    def __init__(self, publish: Callable[[dict[str, str]], None] | None = None) -> None:
        self.checks: list[Periodic] = []
        self.failing: dict[str, str] = {}
        self.publish = publish

    def add(self, name: str, check: Check, settings: CheckConfig) -> None:
        self.checks.append(Periodic(name, check, settings))

    async def probe_all(self) -> None:
        """Every check once, now (what the periodic runs do, for a caller that cannot wait an interval)."""
        for periodic in self.checks:
            await periodic.probe()
            self._update(periodic)

    async def run_until(self, stop: asyncio.Event) -> None:
        if self.publish is not None:
            self.publish(self.failing)
        await asyncio.gather(*(self._run(periodic, stop) for periodic in self.checks))

    async def _run(self, periodic: Periodic, stop: asyncio.Event) -> None:
        while True:
            await periodic.probe()
            self._update(periodic)
            if await stopped_within(stop, periodic.interval):
                return

    def _update(self, periodic: Periodic) -> None:
        failing = {name: error for name, error in self.failing.items() if name != periodic.name}
        if periodic.failing:
            failing[periodic.name] = periodic.error
        if failing == self.failing:
            return
        if periodic.failing:
            log.error("health check %s failing: %s", periodic.name, periodic.error)
        else:
            log.info("health check %s passing again", periodic.name)
        self.failing = failing
        if self.publish is not None:
            self.publish(failing)


def storage_check(backend: StorageBackend, writable: bool) -> Check:
    async def check() -> None:
        if writable:
            await backend.put_content(paths.health_probe_path(), b"ok\n")
            return
        with contextlib.suppress(PathNotFound):
            await backend.stat(paths.ROOT)

    return check


def database_check(db: Database) -> Check:
    async def check() -> None:
        async with db.read() as session:
            await session.scalar(select(literal(1)).select_from(repositories).limit(1))

    return check


def configured(config: Config, directory: str | None) -> Health | None:
    """A worker's health when ``health:`` enables a check (None otherwise), publishing to ``directory`` (the debug
    server's) when there is one. Its checks are added by ``add_checks`` once the storage and database exist."""
    settings = config.health
    if not (settings.storagedriver.enabled or settings.database.enabled or _listed(settings)):
        return None
    return Health(publish_to(directory) if directory else None)


def _listed(settings: HealthConfig) -> bool:
    return bool(settings.file or settings.http or settings.tcp)


def add_checks(health: Health, config: Config, backend: StorageBackend, db: Database) -> None:
    settings = config.health
    if settings.storagedriver.enabled:
        writable = not config.storage.read_only
        health.add(f"storagedriver_{config.storage.driver}", storage_check(backend, writable), settings.storagedriver)
    if settings.database.enabled:
        health.add("database", database_check(db), settings.database)
    for name, check, period in listed_checks(settings):
        health.add(name, check, period)


class HealthGate:
    """distribution's ``health.Handler``: while a check fails, every request is 503 UNAVAILABLE."""

    def __init__(self, app: ASGIApp, health: Health) -> None:
        self.app = app
        self.health = health

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.health.failing and scope["type"] == "http":
            head = scope["method"] == "HEAD"
            return await error_response(ErrorCode.UNAVAILABLE.error(DETAIL), head=head)(scope, receive, send)
        await self.app(scope, receive, send)


# --- what workers publish for the debug server ---


def health_dir(directory: str) -> Path:
    return Path(directory, "health")


def publish_to(directory: str) -> Callable[[dict[str, str]], None]:
    target = health_dir(directory) / f"{os.getpid()}.json"

    def publish(failing: dict[str, str]) -> None:
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".publish-")
        with os.fdopen(fd, "w") as out:
            json.dump(failing, out)
        os.replace(temporary, target)

    return publish


def read_published(directory: str) -> dict[str, str]:
    """Every live worker's failing checks, merged; a dead worker's file is removed."""
    failing: dict[str, str] = {}
    for path in sorted(health_dir(directory).glob("*.json")):
        if not _alive(int(path.stem)):
            path.unlink(missing_ok=True)
            continue
        with contextlib.suppress(OSError, ValueError):
            failing.update(json.loads(path.read_text()))
    return failing


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
