"""Pull events: kept in memory, never in SQL, as distribution keeps all its events.

A pull changes nothing, so there is no transaction for its event to join, and a GET must not wait on SQL for it.
The GET captures a ``Pull`` (the raw values its event needs: a dozen references, no dict, no JSON, no URL) into the
bounded queue of each endpoint that wants it; that endpoint's delivery loop (``registry.events.delivery``) renders
the events (``PullEvents``: the URL's path and base are kept per content and per host, as pulls repeat) and posts
them in the same envelopes as the outbox's events. A queue that is full drops its oldest pull for the new one (the
latest pulls are the ones a receiver wants when it comes back), counts it, and warns at most every WARN_EVERY
seconds. What a queue holds is lost on a crash, as distribution's queue is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from starlette.datastructures import URL

from registry.config import HttpConfig
from registry.events.envelope import PULL, Event, RequestRecord, Source, Target
from registry.events.requests import new_request_id

log = logging.getLogger("registry.events")
_string: Callable[[str], str] = encode_basestring  # a string as json.dumps(ensure_ascii=False) writes it
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}  # RFC 4122's variant bits
MAX_QUEUED = 10_000  # pulls waiting per endpoint
WARN_EVERY = 60.0
MAX_KEPT = 10_000  # URL paths and bases kept


@dataclass(slots=True)
class Pull:
    """What a GET hands over: raw values only (the request's headers as received, read at delivery)."""

    at: int  # microseconds since the epoch (time.time_ns() // 1000)
    route: str  # "manifest" or "blob": the route the content's URL is built from
    repository: str
    digest: str
    media_type: str
    size: int
    tag: str
    references: Sequence[dict[str, Any]]
    request_id: str
    client: Any  # the ASGI scope's (host, port) or None
    method: str  # "": no request
    scheme: str
    server: Any  # the ASGI scope's (host, port) or None
    headers: Sequence[tuple[bytes, bytes]]
    actor: str
    app: Any  # the Starlette app whose routes make the URL; None: no URL
    encoded: str | None = None  # the event's JSON, made once for every endpoint that posts it


class PullQueue:
    """One endpoint's pulls waiting, oldest first: at most ``limit``; when full, the oldest is dropped and counted."""

    def __init__(self, endpoint: str, limit: int = MAX_QUEUED) -> None:
        self.endpoint = endpoint
        self.waiting: deque[Pull] = deque(maxlen=limit)
        self.ready = asyncio.Event()  # set when a pull is put; its delivery loop clears it
        self.dropped = 0
        self._warned_at = -WARN_EVERY

    def __len__(self) -> int:
        return len(self.waiting)

    def put(self, pull: Pull) -> None:
        if len(self.waiting) == self.waiting.maxlen:
            self._dropped(1)
        self.waiting.append(pull)
        if not self.ready.is_set():
            self.ready.set()

    def take(self, limit: int) -> list[Pull]:
        waiting = self.waiting
        return [waiting.popleft() for _ in range(min(limit, len(waiting)))]

    def give_back(self, pulls: list[Pull]) -> None:
        """Refused pulls: back in front, as many as there is room for (the oldest are dropped); a pull refused on
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
    """Renders pulls as distribution's events, in the delivery loop: what the GET did not build."""

    def __init__(self, source: Source, http: HttpConfig | None) -> None:
        self.source = source
        self.host = http.host if http is not None else None
        self.relative = http is not None and http.relativeurls
        self._paths: dict[tuple[str, str, str], str] = {}
        self._bases: dict[tuple[str, bytes, Any], str] = {}
        self._targets: dict[tuple[Any, ...], str] = {}  # a content's target, as JSON
        self._rests: dict[tuple[bytes, str, bytes, str], str] = {}  # see _rest
        self._ids = _EventIds()
        self._source = _json(source.as_json())
        self._second, self._second_text = -1, ""

    def encoded(self, pull: Pull) -> str:
        """The event's JSON, exactly as ``self.event(pull).encoded()`` writes it, from parts kept as JSON: a
        content's target, and a client's host, method, user agent and actor with the source."""
        if pull.encoded is None:
            if not pull.method:  # reported outside a request: never on the request path
                pull.encoded = self.event(pull).encoded()
                return pull.encoded
            host, useragent = _host_and_useragent(pull.headers)
            client = pull.client
            addr = '"addr":' + _string(f"{client[0]}:{client[1]}") + "," if client else ""
            pull.encoded = (
                f'{{"id":"{self._ids.next()}","timestamp":"{self._timestamp(pull.at)}","action":"pull","target":'
                f'{self._target(pull, host)},"request":{{"id":{_string(pull.request_id or new_request_id())},{addr}'
                f"{self._rest(pull, host, useragent)}"
            )
        return pull.encoded

    def _timestamp(self, at: int) -> str:
        second, micro = divmod(at, 1_000_000)
        if second != self._second:
            self._second, self._second_text = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{micro:06d}Z"

    def _target(self, pull: Pull, host: bytes) -> str:
        key = (pull.route, pull.repository, pull.digest, pull.media_type, pull.size, pull.tag, pull.scheme, host)
        found = self._targets.get(key)
        if found is None:
            target = Target(
                pull.repository, pull.digest, pull.media_type, pull.size, self._url(pull, host), pull.tag,
                references=pull.references,
            )  # fmt: skip
            found = _keep(self._targets, key, _json(target.as_json()))
        return found

    def _rest(self, pull: Pull, host: bytes, useragent: bytes) -> str:
        """What follows the request's id and address: its host, method and user agent, the actor, the source."""
        key = (host, pull.method, useragent, pull.actor)
        found = self._rests.get(key)
        if found is None:
            record = RequestRecord("-", "", host.decode("latin-1"), pull.method, useragent.decode("latin-1"))
            actor = {"name": pull.actor} if pull.actor else {}
            rest = _json(record.as_json()).removeprefix('{"id":"-",')
            found = _keep(self._rests, key, f'{rest},"actor":{_json(actor)},"source":{self._source}}}')
        return found

    def event(self, pull: Pull, event_id: str | None = None) -> Event:
        """The event as an object (what ``encoded`` writes without building it)."""
        host, useragent = _host_and_useragent(pull.headers)
        target = Target(
            pull.repository, pull.digest, pull.media_type, pull.size, self._url(pull, host), pull.tag,
            references=pull.references,
        )  # fmt: skip
        client, request = pull.client, None
        if pull.method:  # none: reported outside a request
            request = RequestRecord(
                id=pull.request_id or new_request_id(),
                addr=f"{client[0]}:{client[1]}" if client else "",
                host=host.decode("latin-1"),
                method=pull.method,
                useragent=useragent.decode("latin-1"),
            )
        second, micro = divmod(pull.at, 1_000_000)
        moment = datetime.fromtimestamp(second, UTC).replace(microsecond=micro)
        return Event(PULL, target, self.source, request, pull.actor, event_id or new_request_id(), moment)

    def _url(self, pull: Pull, host: bytes) -> str:
        """As the request would build it (``registry.forwarded.base_url``): a trusted proxy's scheme and host are
        in the scope already."""
        if pull.app is None:
            return ""
        path = self._path(pull)
        if self.relative:
            return path
        return self._base(pull.scheme, host, pull.server) + path

    def _path(self, pull: Pull) -> str:
        key = (pull.route, pull.repository, pull.digest)
        path = self._paths.get(key)
        if path is None:
            params = {"name": pull.repository, "reference" if pull.route == "manifest" else "digest": pull.digest}
            path = _keep(self._paths, key, str(pull.app.url_path_for(pull.route, **params)))
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


class _EventIds:
    """Event ids shaped as random UUIDs (version 4): 74 random bits drawn once per process, and a 48-bit counter
    from a random start in the last group. Unique as distribution's are, without a random draw per event."""

    def __init__(self) -> None:
        text = os.urandom(16).hex()
        self._prefix = f"{text[:8]}-{text[8:12]}-4{text[13:16]}-{_VARIANT[text[16]]}{text[17:20]}-"
        self._count = int(text[20:], 16)

    def next(self) -> str:
        self._count = (self._count + 1) & 0xFFFF_FFFF_FFFF
        return f"{self._prefix}{self._count:012x}"


def _keep(kept: dict[Any, str], key: Any, value: str) -> str:
    if len(kept) >= MAX_KEPT:
        kept.clear()
    kept[key] = value
    return value


def _host_and_useragent(headers: Sequence[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
    host = useragent = None
    for name, value in headers:
        if name == b"host" and host is None:
            host = value
        elif name == b"user-agent" and useragent is None:
            useragent = value
    return host or b"", useragent or b""
