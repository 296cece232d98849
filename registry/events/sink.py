"""The one sink every change reports through: content/ at its commit points, the garbage collector, future features.

An event is built where the change is decided (on the event loop, where the request that caused it is known through
``registry.events.requests.current_scope``: its id, client, host, user agent, the authenticated user), then written
to the outbox by ``record`` inside the very transaction that makes the change: committed together or not at all. So
a push acknowledged with 201 has its event in SQL, whatever happens to the process next, and any worker or replica
delivers it (``registry.events.delivery``).

Pulls change nothing, so their events are not transactional and never touch SQL: ``pulled`` (``PullEvents.pulled``)
writes a pull's event into each wanting endpoint's queue in memory (``registry.events.pulls``), posted by that
endpoint's delivery loop; what a crash catches in a queue is lost, as distribution's in-memory queue loses it.

With no endpoint enabled the sink is off: nothing is built and nothing written.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from starlette.requests import Request
from starlette.types import Scope

from registry.config import HttpConfig, listen_host_port
from registry.db import outbox
from registry.db.models import utcnow
from registry.db.sessions import Writer
from registry.events.endpoints import Notifications
from registry.events.envelope import BLOB_MEDIA_TYPE, DELETE, MOUNT, PUSH, Event, RequestRecord, Source, Target
from registry.events.pulls import PullEvents, host_and_useragent
from registry.events.requests import current_scope, new_request_id
from registry.forwarded import base_url
from registry.manifests import ParsedManifest

log = logging.getLogger("registry.events")
Pending = Sequence[dict[str, Any]]  # outbox rows, one per event and endpoint that wants it
NOTHING: Pending = ()
MAX_KEPT_PATHS = 10_000


def source_of(http: HttpConfig) -> Source:
    """This node as distribution names it: the host name and the port it listens on."""
    port = listen_host_port(http.addr)[1] if http.net == "tcp" else 0
    return Source(f"{socket.gethostname()}:{port}" if port else socket.gethostname())


class EventSink:
    def __init__(self, notifications: Notifications, source: Source, http: HttpConfig | None = None) -> None:
        self.notifications = notifications
        self.endpoints = notifications.endpoints
        self.enabled = bool(self.endpoints)
        self.source = source
        self._http = http
        self.pull_events = PullEvents(source, http, self.endpoints, notifications.include_references)
        self.pull_queues = self.pull_events.queues
        # a manifest or blob served (``PullEvents.pulled``): bound here, as the GET's path calls it without a frame more
        self.pulled = self.pull_events.pulled
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[asyncio.Event] = []
        self._paths: dict[tuple[str, ...], str] = {}  # (route, repository, digest): the path url_path_for gives

    # building, on the event loop (where the request is known)

    def manifest_pushed(self, repo: str, parsed: ParsedManifest, digest: str, tags: Sequence[str]) -> Pending:
        if not self.enabled:
            return NOTHING
        origin = _origin()
        target = self._manifest_target(origin, repo, digest, parsed.media_type, parsed.size, parsed)
        return self._rows([self._event(PUSH, _with(target, tag=tag), origin) for tag in tags or [""]])

    def blob_pushed(self, repo: str, digest: str, size: int) -> Pending:
        if not self.enabled:
            return NOTHING
        origin = _origin()
        return self._rows([self._event(PUSH, self._blob_target(origin, repo, digest, size), origin)])

    def blob_mounting(self, repo: str, digest: str, source_repo: str | None) -> Callable[[int], Pending]:
        """The mount's events once its size is known (inside the transaction that links the blob)."""
        if not self.enabled:
            return _nothing
        origin = _origin()

        def mounted(size: int) -> Pending:
            target = _with(self._blob_target(origin, repo, digest, size), from_repository=source_repo or "")
            return self._rows([self._event(MOUNT, target, origin)])

        return mounted

    def deleted(self, repo: str, *, digest: str = "", tag: str = "") -> Pending:
        """A manifest (by digest), a tag, or a blob's link deleted: distribution's delete event names only that."""
        if not self.enabled:
            return NOTHING
        return self._rows([self._event(DELETE, Target(repo, digest=digest, tag=tag), _origin())])

    # writing

    async def record(self, session: Writer, pending: Pending) -> None:
        """Inside the transaction that makes the change: its events are committed with it."""
        if pending:
            await outbox.add(session, pending)
            self._wake()

    # delivery workers listen for rows written by this process

    def listen(self) -> asyncio.Event:
        self._loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        self._listeners.append(woken)
        return woken

    def _wake(self) -> None:
        """From the event loop or the SQLite writer's thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._set_all)

    def _set_all(self) -> None:
        for woken in self._listeners:
            woken.set()

    # events

    def _event(self, action: str, target: Target, origin: _Origin | None) -> Event:
        if origin is None:
            return Event(action, target, self.source)
        return Event(action, target, self.source, origin.request, origin.actor)

    def _rows(self, events: Sequence[Event]) -> Pending:
        now = utcnow()
        rows = []
        for event in events:
            wanting = [e.name for e in self.endpoints if e.wants(event.action, event.target.media_type)]
            if wanting:
                payload = event.encoded()
                rows += [outbox.outbox_row(name, payload, now) for name in wanting]
        return rows

    def _manifest_target(
        self, origin: _Origin | None, repo: str, digest: str, media_type: str, size: int, parsed: ParsedManifest | None
    ) -> Target:
        references: list[dict[str, Any]] = []
        if parsed is not None and self.notifications.include_references:
            references = [_reference(d) for d in (*parsed.blob_references, *parsed.manifests)]
        url = self._url(origin, "manifest", name=repo, reference=digest)
        return Target(repo, digest, media_type, size, url, references=references)

    def _blob_target(self, origin: _Origin | None, repo: str, digest: str, size: int) -> Target:
        return Target(repo, digest, BLOB_MEDIA_TYPE, size, self._url(origin, "blob", name=repo, digest=digest))

    def _url(self, origin: _Origin | None, route: str, **params: str) -> str:
        """The content's URL as the request that caused the event would build it; none without a request."""
        if origin is None or "app" not in origin.scope:
            return ""
        path = self._path(origin.scope, route, params)
        if self._http is not None and self._http.relativeurls:
            return path
        return base_url(Request(origin.scope), self._http.host if self._http else None) + path

    def _path(self, scope: Scope, route: str, params: dict[str, str]) -> str:
        """Built once per content (pulls repeat): routing builds a path in tens of microseconds."""
        key = (route, *params.values())
        path = self._paths.get(key)
        if path is None:
            if len(self._paths) >= MAX_KEPT_PATHS:
                self._paths.clear()
            path = self._paths[key] = str(scope["app"].url_path_for(route, **params))
        return path


@dataclass(frozen=True)
class _Origin:
    """The request that caused an event, read on the event loop (a transaction may run in another thread)."""

    scope: Scope
    request: RequestRecord
    actor: str


def _origin() -> _Origin | None:
    scope = current_scope()
    if scope is None:
        return None
    grants = scope.get("state", {}).get("grants")
    return _Origin(scope, _request_record(scope), getattr(grants, "subject", "") or "")


def _nothing(size: int) -> Pending:
    return NOTHING


def _request_record(scope: Scope) -> RequestRecord:
    state = scope.setdefault("state", {})
    client = scope.get("client")
    host, useragent = host_and_useragent(scope["headers"])  # as a pull event reads them
    return RequestRecord(
        id=str(state.setdefault("request_id", new_request_id())),
        addr=f"{client[0]}:{client[1]}" if client else "",
        host=host.decode("latin-1"),
        method=scope["method"],
        useragent=useragent.decode("latin-1"),
    )


def _reference(descriptor: Any) -> dict[str, Any]:
    return {"mediaType": descriptor.media_type, "size": descriptor.size, "digest": descriptor.digest}


def _with(target: Target, **changes: Any) -> Target:
    return replace(target, **changes)


def disabled() -> EventSink:
    """A sink with no endpoint: stores and the collector built without one report nothing."""
    return EventSink(Notifications(), Source(""))
