"""Pull events: kept in memory, never in SQL, as distribution keeps all its events.

A pull changes nothing, so there is no transaction for its event to join, and a GET must not wait on SQL for it.
The GET only captures what its event needs: the time, the request (``current_request``) and the content served, in
a plain tuple. Every BATCH captured pulls, the GET that completes the batch writes their events (``PullEvents``: a
``Pull``, the raw values of one, written as distribution's event JSON; a content's target and a client's request
fields are kept as JSON, as pulls repeat; only the id, time, request id and client address are made per event) into
the bounded queue of each endpoint that wants them. The pulls of a quiet moment, fewer than a batch, are written by
the delivery loop that takes from its queue (``PullQueue.take``), woken by the first of them; that loop
(``registry.events.delivery``) posts them in the same envelopes as the outbox's events. What a GET captures lives
until its batch is written; a queue holds strings, which the garbage collector never walks.

A queue that is full drops its oldest pull for the new one (the latest pulls are the ones a receiver wants when it
comes back), counts it, and warns at most every WARN_EVERY seconds. What a queue holds is lost on a crash, as
distribution's queue is.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, TypeVar

from starlette.datastructures import URL

from registry.config import HttpConfig
from registry.digests import looks_like_digest
from registry.events.endpoints import Endpoint
from registry.events.envelope import PULL, Event, RequestRecord, Source, Target
from registry.events.requests import Current, UuidSequence, current_request, new_request_id
from registry.manifests import parse_manifest

log = logging.getLogger("registry.events")
_V = TypeVar("_V")
_string: Callable[[str], str] = encode_basestring  # a string as json.dumps(ensure_ascii=False) writes it
MAX_QUEUED = 10_000  # pulls waiting per endpoint
# Pulls captured before their events are written, together: on each GET, among the objects and code of a few hundred
# other requests, recording a manifest pull took 5.1 us of a 90 us GET, measured in the server; in batches of 4, 8,
# 16, 32 and 64 pulls, 4.2, 3.7, 3.5, 3.4 and 3.3 us. Small enough that what a batch reads (its requests' scopes,
# the contents served) is still in the CPU's caches, and that the GET completing one waits little (about 80 us).
BATCH = 32
WARN_EVERY = 60.0
MAX_KEPT = 10_000  # URL paths and bases kept
_NO_REQUEST: dict[str, Any] = {"method": "", "scheme": "", "headers": ()}  # a pull reported outside a request
_NOBODY = ("", None)  # no client, or no server (a unix socket)


References = tuple[tuple[str, int, str], ...]  # a manifest's (media type, size, digest) of what it references
# what a GET captures: time.time_ns(), its request, the queues wanting the pull, then the arguments of ``pulled``
Captured = tuple[int, Current, tuple["PullQueue", ...], str, str, str, str, int, str, bytes]
Pull = tuple[
    int,
    int,
    str,
    str,
    int | None,
    References,
    str,
    str,
    str,
    str,
    int,
    str,
    str,
    str,
    str,
    int | None,
    bytes,
    bytes,
    str,
]
PULL_FIELDS = (
    "number",  # this process's count of pulls: the event's id is made from it, the same for every endpoint
    "at",  # microseconds since the epoch (time.time_ns() // 1000)
    "request_id",  # "": none was given (one is made)
    "client_host", "client_port",  # the ASGI scope's client ("", None: none); apart, as a tuple inside may be tracked
    "references",
    # from here on (pull[6:]), the same for every pull of one content by one client: the key of its JSON kept
    "route",  # "manifest" or "blob": the route the content's URL is built from
    "repository", "digest", "media_type", "size",
    "reference",  # the tag or digest the manifest was asked by ("": a blob); the event names the tag
    "method",  # "": reported outside a request (no request, no URL)
    "scheme", "server_host", "server_port",  # the ASGI scope's
    "host", "useragent",  # the request's headers
    "actor",
)  # fmt: skip


class PullQueue:
    """One endpoint's pull events waiting (encoded: ``PullEvents.encoded``), oldest first: at most ``limit``; when
    full, the oldest is dropped and counted."""

    def __init__(
        self, endpoint: str, limit: int = MAX_QUEUED, write_captured: Callable[[], None] = lambda: None
    ) -> None:
        self.endpoint = endpoint
        self.write_captured = write_captured  # before a take: the events of the pulls captured and not yet written
        self.waiting: deque[str] = deque(maxlen=limit)
        self.ready = asyncio.Event()  # set by ``wake``; its delivery loop clears it (``unready``)
        self._ready = False  # the event's state, read without a call on every put
        self.dropped = 0
        self._warned_at = -WARN_EVERY

    def __len__(self) -> int:
        return len(self.waiting)

    def put(self, event: str) -> None:
        waiting = self.waiting
        if len(waiting) == waiting.maxlen:
            self._dropped(1)
        waiting.append(event)
        if not self._ready:
            self.wake()

    def wake(self) -> None:
        """Its delivery loop has something to take (an event put, or a pull captured)."""
        if not self._ready:
            self._ready = True
            self.ready.set()

    def unready(self) -> None:
        self._ready = False
        self.ready.clear()

    def take(self, limit: int) -> list[str]:
        self.write_captured()
        waiting = self.waiting
        return [waiting.popleft() for _ in range(min(limit, len(waiting)))]

    def give_back(self, pulls: list[str]) -> None:
        """Refused events: back in front, as many as there is room for (the oldest are dropped); an event refused on
        its own goes behind the others instead, so that one the endpoint always refuses holds none of them back."""
        if len(pulls) == 1 and self.waiting:
            return self.put(pulls[0])
        room = (self.waiting.maxlen or 0) - len(self.waiting)
        if room < len(pulls):
            self._dropped(len(pulls) - room)
            pulls = pulls[len(pulls) - room :] if room > 0 else []
        self.waiting.extendleft(reversed(pulls))

    def _dropped(self, count: int) -> None:
        self.dropped += count
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning(
                "notification endpoint %s: %d pull event(s) dropped since the start, the oldest first: its queue of "
                "%d is full (the endpoint is down or slower than the pulls)",
                self.endpoint, self.dropped, self.waiting.maxlen,
            )  # fmt: skip


class PullEvents:
    """Writes pulls as distribution's events, BATCH at a time: written on each GET, among the objects and code of a
    few hundred other requests, an event took three and a half times what it takes in a loop; written by a delivery
    loop tens of milliseconds later, three times (the values it reads are out of the CPU's caches by then)."""

    def __init__(
        self,
        source: Source,
        http: HttpConfig | None,
        endpoints: Sequence[Endpoint] = (),
        with_references: bool = False,  # notifications.events.includereferences
    ) -> None:
        self.source = source
        self.endpoints = endpoints
        self.queues = {e.name: PullQueue(e.name, MAX_QUEUED, self.write_captured) for e in endpoints}
        self._with_references = with_references
        self._queues_for: dict[str, tuple[PullQueue, ...]] = {}  # media type: the queues of the endpoints wanting it
        self._captured: list[Captured] = []  # pulls whose events are not written yet, oldest first
        self._references: dict[str, References] = {}  # digest: a pulled manifest's references
        self._numbers = itertools.count()
        self.app: Any = None  # the Starlette app whose routes build the URLs (set at the first pull in a request)
        self.host = http.host if http is not None else None
        self.relative = http is not None and http.relativeurls
        self._paths: dict[tuple[str, str, str], str] = {}
        self._bases: dict[tuple[str, bytes, Any], str] = {}
        self._parts: dict[tuple[Any, ...], tuple[str, str]] = {}  # see _kept_parts
        self._addrs: dict[tuple[str, int | None], str] = {}  # a client's address, as JSON
        self._ids = UuidSequence()  # an event's id is made from its pull's number: the same for every endpoint
        self._source = _json(source.as_json())
        self._second, self._second_text = -1, ""

    def pulled(
        self, route: str, repo: str, digest: str, media_type: str, size: int, reference: str, payload: bytes = b""
    ) -> None:
        """A manifest (``route`` "manifest", by tag or digest: ``reference``, its ``payload``) or a blob ("blob")
        served: captured for the endpoints that want it, and the events of a full batch written. On every GET, where
        each frame and each object made costs three to four times what it costs in a loop. Never raises."""
        queues = self._queues_for.get(media_type)
        if queues is None:
            queues = self._wanting(media_type)
        if not queues:
            return
        captured = self._captured
        captured.append(
            (time.time_ns(), current_request(), queues, route, repo, digest, media_type, size, reference, payload)
        )
        if len(captured) >= BATCH:
            self.write_captured()
        elif len(captured) == 1:  # the first of a batch: a quiet moment's pulls are written by a delivery loop
            for queue in self.queues.values():
                queue.wake()

    def write_captured(self) -> None:
        """The events of the pulls captured so far, oldest first, into the queues that want them. An event that
        cannot be written is logged and left out. Never raises."""
        captured, self._captured = self._captured, []
        for at, current, queues, route, repo, digest, media_type, size, reference, payload in captured:
            try:
                event = self.encoded(self._pull(at, current, route, repo, digest, media_type, size, reference, payload))
            except Exception:
                log.exception("writing the event of a pull of %s@%s failed", repo, digest)
                continue
            for queue in queues:
                queue.put(event)

    def _pull(
        self,
        at: int,
        current: Current,
        route: str,
        repo: str,
        digest: str,
        media_type: str,
        size: int,
        reference: str,
        payload: bytes,
    ) -> Pull:
        """What a captured pull's event needs, read from its request's scope."""
        references: References = ()
        if payload and self._with_references:
            references = self._references.get(digest) or self._references_of(digest, payload, media_type)
        request_id, scope, headers, host, useragent = current
        if scope is None:
            scope = _NO_REQUEST
        elif self.app is None:
            self.app = scope.get("app")
        if scope["headers"] is not headers:  # registry.forwarded has changed them (or no request)
            host, useragent = host_and_useragent(scope["headers"])
        client, server = scope.get("client") or _NOBODY, scope.get("server") or _NOBODY
        grants = scope["state"].get("grants") if "state" in scope else None
        return (
            next(self._numbers), at // 1000, request_id or "", client[0], client[1], references, route, repo, digest,
            media_type, size, reference, scope["method"], scope["scheme"], server[0], server[1], host, useragent,
            getattr(grants, "subject", "") or "",
        )  # fmt: skip

    def _wanting(self, media_type: str) -> tuple[PullQueue, ...]:
        wanting = tuple(self.queues[e.name] for e in self.endpoints if e.wants(PULL, media_type))
        if len(self._queues_for) < MAX_KEPT:
            self._queues_for[media_type] = wanting
        return wanting

    def _references_of(self, digest: str, payload: bytes, media_type: str) -> References:
        """A manifest's references, parsed at its first pull (pulls repeat; a digest's references never change)."""
        found = self._references.get(digest)
        if found is None:
            parsed = parse_manifest(payload, media_type)
            found = tuple((d.media_type, d.size, d.digest) for d in (*parsed.blob_references, *parsed.manifests))
            _keep(self._references, digest, found)
        return found

    def encoded(self, pull: Pull) -> str:
        """The event's JSON, exactly as ``self.event(pull).encoded()`` writes it. Only its id, time, request id and
        client address are made per event, around what is kept as JSON per content and client (``_parts``), in one
        f-string. The request id needs no escaping: it is one RequestObserving found sane or made
        (``registry.events.requests``)."""
        if not pull[12]:  # no method: reported outside a request, never on the request path
            return self.event(pull).encoded()
        second, micro = divmod(pull[1], 1_000_000)
        if second != self._second:
            self._second, self._second_text = second, time.strftime('"%Y-%m-%dT%H:%M:%S.', time.gmtime(second))
        target, rest = self._parts.get(pull[6:]) or self._kept_parts(pull)
        addr = self._addrs.get(pull[3:5]) or self._kept_addr(pull[3], pull[4])
        return (
            f'{{"id":"{self._ids.of(pull[0])}","timestamp":{self._second_text}'
            f'{str(micro + 1_000_000)[1:]}Z"{target}"{pull[2] or new_request_id()}",{addr}{rest}'
        )

    def _kept_parts(self, pull: Pull) -> tuple[str, str]:
        """From the action to the request's id, and after its address: the same for every pull of one content by
        one client (route, content and tag; method, scheme, server, Host, User-Agent and actor)."""
        *_, method, _scheme, _server_host, _server_port, host, useragent, actor = pull
        target = f',"action":"pull","target":{_json(self._target_of(pull).as_json())},"request":{{"id":'
        record = RequestRecord("-", "", host.decode("latin-1"), method, useragent.decode("latin-1"))
        rest = _json(record.as_json()).removeprefix('{"id":"-",')
        rest += f',"actor":{_json({"name": actor} if actor else {})},"source":{self._source}}}'
        if len(self._parts) >= MAX_KEPT:
            self._parts.clear()
        self._parts[pull[6:]] = (target, rest)
        return target, rest

    def _kept_addr(self, address: str, port: int | None) -> str:
        return _keep(self._addrs, (address, port), "" if port is None else f'"addr":{_string(f"{address}:{port}")},')

    def event(self, pull: Pull, event_id: str | None = None) -> Event:
        """The event as an object (what ``encoded`` writes without building it)."""
        number, at, request_id, address, port = pull[:5]
        method, _scheme, _server_host, _server_port, host, useragent, actor = pull[12:]
        request = None
        if method:  # none: reported outside a request
            request = RequestRecord(
                id=request_id or new_request_id(),
                addr=f"{address}:{port}" if port is not None else "",
                host=host.decode("latin-1"),
                method=method,
                useragent=useragent.decode("latin-1"),
            )
        second, micro = divmod(at, 1_000_000)
        moment = datetime.fromtimestamp(second, UTC).replace(microsecond=micro)
        event_id = event_id or self._ids.of(number)
        return Event(PULL, self._target_of(pull), self.source, request, actor, event_id, moment)

    def _target_of(self, pull: Pull) -> Target:
        references, _route, repo, digest, media_type, size, reference = pull[5:12]
        tag = "" if looks_like_digest(reference) else reference
        referenced = [{"mediaType": kind, "size": length, "digest": named} for kind, length, named in references]
        return Target(repo, digest, media_type, size, self._url(pull), tag, references=referenced)

    def _url(self, pull: Pull) -> str:
        """As the request would build it (``registry.forwarded.base_url``): a trusted proxy's scheme and host are
        in the scope already. None without a request."""
        route, repo, digest = pull[6:9]
        method, scheme, server_host, server_port, host = pull[12:17]
        if self.app is None or not method:
            return ""
        path = self._path(route, repo, digest)
        if self.relative:
            return path
        return self._base(scheme, host, None if server_port is None else (server_host, server_port)) + path

    def _path(self, route: str, repo: str, digest: str) -> str:
        key = (route, repo, digest)
        path = self._paths.get(key)
        if path is None:
            params = {"name": repo, "reference" if route == "manifest" else "digest": digest}
            path = _keep(self._paths, key, str(self.app.url_path_for(route, **params)))
        return path

    def _base(self, scheme: str, host: bytes, server: Any) -> str:
        if self.host:
            return self.host.rstrip("/")
        key = (scheme, host, server)
        base = self._bases.get(key)
        if base is None:
            headers = [(b"host", host)] if host else []
            url = URL(scope={"type": "http", "scheme": scheme, "server": server, "path": "/", "headers": headers})
            base = _keep(self._bases, key, f"{url.scheme}://{url.netloc}")
        return base


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _keep(kept: dict[Any, _V], key: Any, value: _V) -> _V:
    if len(kept) >= MAX_KEPT:
        kept.clear()
    kept[key] = value
    return value


def host_and_useragent(headers: Sequence[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
    """A request's Host and User-Agent (the first of each), as received."""
    host = useragent = None
    for name, value in headers:
        if name == b"host" and host is None:
            host = value
        elif name == b"user-agent" and useragent is None:
            useragent = value
    return host or b"", useragent or b""
