"""One measurement per HTTP request, handed to observers (the access log, the request metrics).

``RequestObserving`` wraps the whole app, outermost: it counts the body bytes received and sent (a sendfile
response's ``http.response.zerocopysend`` count too, passed on untouched), times the request, and when the app is
done hands the figures to the request metrics' ``Tally`` (when metrics are on), then builds one ``RequestRecord``
and calls every observer with it (when there is one: the access log). An observer is a cheap synchronous callable
taking the record; one that raises is logged and skipped, never felt by the request. Observers are added to
``app.state.request_observers`` (``add_observer``), before or after the app starts.

The request id is the client's ``X-Request-Id`` when it is sane (1 to 128 characters of ``A-Z a-z 0-9 . _ : + / = @
-``), else a new UUID; the response echoes it in ``X-Request-Id``. Code handling the request finds it in
``request.state.request_id`` (``scope["state"]["request_id"]``), and code without the request at hand (a commit
point in ``content/``) in ``current_request_id()``; the log lines written meanwhile carry it as ``http.request.id``.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, NamedTuple, Protocol

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.protocol import ZEROCOPY

log = logging.getLogger("registry")
REQUEST_ID_HEADER = "X-Request-Id"
USER_AGENT_LIMIT = 256  # characters of a User-Agent kept in the record
_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode()
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}  # RFC 4122's variant bits
_BIT_48 = 1 << 48
_SANE_ID = re.compile(rb"[A-Za-z0-9._:+/=@-]{1,128}")


class RequestRecord(NamedTuple):
    """What one request did. ``route`` is the route's name (``registry.routes``; None when no route matched),
    ``repository`` its ``name`` path parameter as sent, ``user`` the account its credentials proved (None when
    anonymous), ``remote_addr`` the client through the trusted proxies (``registry.forwarded``). ``path`` has no
    query string: a query may carry a secret. ``status`` is 500 when the app failed before answering. A tuple:
    built for every request, it costs a third of a frozen dataclass."""

    method: str
    path: str
    route: str | None
    repository: str | None
    status: int
    bytes_in: int
    bytes_out: int
    duration: float  # seconds, from the first byte of the request the server handed over to the last sent
    user: str | None
    request_id: str
    remote_addr: str | None
    user_agent: str | None


Observer = Callable[[RequestRecord], None]


class Current(NamedTuple):
    """The request a task is handling: its id, its scope, and its Host and User-Agent (the first of each, b"" when
    absent) as read from ``headers``, the list the scope had then (``registry.forwarded`` may replace it)."""

    request_id: str | None
    scope: Scope | None
    headers: list[tuple[bytes, bytes]] | None
    host: bytes
    useragent: bytes


_NO_REQUEST = Current(None, None, None, b"", b"")
_current: ContextVar[Current] = ContextVar("registry_request", default=_NO_REQUEST)


def current_request_id() -> str | None:
    """The id of the request being handled by this task, None outside one."""
    return _current.get().request_id


current_request: Callable[[], Current] = _current.get  # the request this task handles (None fields outside one)


def current_scope() -> Scope | None:
    """The ASGI scope of the request being handled by this task, None outside one: the same mapping the app and the
    middleware inside this one see (registry.forwarded's changes included)."""
    return _current.get().scope


def add_observer(app: Starlette, observer: Observer) -> None:
    observers: list[Observer] = app.state.request_observers
    observers.append(observer)


class _Meter:
    __slots__ = ("bytes_in", "bytes_out", "status")

    def __init__(self) -> None:
        self.bytes_in = self.bytes_out = self.status = 0


class Tally(Protocol):
    """Request metrics: a request's figures, counted without a record (``registry.events.request_metrics``)."""

    def count(self, route: str | None, method: str, status: int, seconds: float, received: int, sent: int) -> None: ...


class RequestObserving:
    def __init__(self, app: ASGIApp, observers: list[Observer], tally: Tally | None = None) -> None:
        self.app = app
        self.observers = observers
        self.tally = tally

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        headers = scope["headers"]
        request_id, host, user_agent = _read_headers(headers)
        scope.setdefault("state", {})["request_id"] = request_id
        echoed = (_REQUEST_ID_KEY, request_id.encode())
        meter = _Meter()

        async def receive_counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                meter.bytes_in += len(message.get("body", b""))
            return message

        async def send_counted(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                meter.bytes_out += len(message.get("body", b""))
            elif kind == ZEROCOPY:
                meter.bytes_out += int(message["count"])
            elif kind == "http.response.start":
                meter.status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        token = _current.set(Current(request_id, scope, headers, host or b"", user_agent or b""))
        try:
            await self.app(scope, receive_counted, send_counted)
        finally:
            _current.reset(token)
            duration = time.perf_counter() - started
            if self.tally is not None:
                try:  # the figures, no record (one frame less on every request)
                    route = getattr(scope.get("route"), "name", None)
                    self.tally.count(
                        route, scope["method"], meter.status or 500, duration, meter.bytes_in, meter.bytes_out
                    )
                except Exception:
                    log.exception("request metrics failed: %r", self.tally)
            if self.observers:
                self._notify(_record(scope, meter, request_id, user_agent, duration))

    def _notify(self, record: RequestRecord) -> None:
        for observer in self.observers:
            try:
                observer(record)
            except Exception:
                log.exception("request observer %r failed", observer)


def _read_headers(headers: list[tuple[bytes, bytes]]) -> tuple[str, bytes | None, bytes | None]:
    """The request id (the client's when sane, else a new one), Host and User-Agent (the first of each)."""
    request_id: str | None = None
    host = user_agent = None
    for name, value in headers:
        if name == b"host":
            host = value if host is None else host
        elif name == b"user-agent":
            user_agent = value if user_agent is None else user_agent
        elif name == _REQUEST_ID_KEY and request_id is None and _SANE_ID.fullmatch(value):
            request_id = value.decode("ascii")
    return request_id or new_request_id(), host, user_agent


class UuidSequence:
    """Ids shaped as random UUIDs (version 4), unique as those are without a random draw per id: 74 random bits
    drawn once per process (and again in a forked child), and a count from a random start in the last 48 bits."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        text = os.urandom(16).hex()
        self._prefix = f"{text[:8]}-{text[8:12]}-4{text[13:16]}-{_VARIANT[text[16]]}{text[17:20]}-"
        self._start = int(text[20:], 16)
        self._numbers = itertools.count()

    def of(self, number: int) -> str:
        return self._prefix + hex((self._start + number) & 0xFFFF_FFFF_FFFF | _BIT_48)[3:]  # 12 digits, zeros kept

    def next(self) -> str:
        return self.of(next(self._numbers))


_REQUEST_IDS = UuidSequence()


def new_request_id() -> str:
    """A request id (a version 4 UUID's shape): it needs to be unique, not secret, and ``uuid.uuid4`` per request
    costs a system call."""
    return _REQUEST_IDS.next()


def _record(scope: Scope, meter: _Meter, request_id: str, user_agent: bytes | None, duration: float) -> RequestRecord:
    route = scope.get("route")
    params: dict[str, Any] = scope.get("path_params") or {}
    grants = scope["state"].get("grants")
    client = scope.get("client")  # read after the app: registry.forwarded has put the forwarded client there
    name = params.get("name")
    return RequestRecord(  # positional: a tuple built by keywords costs twice as much
        scope["method"],
        scope["path"],
        getattr(route, "name", None),
        name if isinstance(name, str) else None,
        meter.status or 500,
        meter.bytes_in,
        meter.bytes_out,
        duration,
        getattr(grants, "subject", None) or None,
        request_id,
        client[0] if client else None,
        None if user_agent is None else user_agent[:USER_AGENT_LIMIT].decode("latin-1"),
    )
