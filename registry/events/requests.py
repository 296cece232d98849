"""One measurement per HTTP request, handed to observers (the access log, the request metrics).

``RequestObserving`` wraps the whole app, outermost: it counts the body bytes received and sent (a sendfile
response's ``http.response.zerocopysend`` count too, passed on untouched), times the request, and when the app is
done builds one ``RequestRecord`` and calls every observer with it. An observer is a cheap synchronous callable
taking the record; one that raises is logged and skipped, never felt by the request. Observers are added to
``app.state.request_observers`` (``add_observer``), before or after the app starts.

The request id is the client's ``X-Request-Id`` when it is sane (1 to 128 characters of ``A-Z a-z 0-9 . _ : + / = @
-``), else a new UUID; the response echoes it in ``X-Request-Id``. Code handling the request finds it in
``request.state.request_id`` (``scope["state"]["request_id"]``), and code without the request at hand (a commit
point in ``content/``) in ``current_request_id()``; the log lines written meanwhile carry it as ``http.request.id``.
"""

from __future__ import annotations

import logging
import random
import re
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.protocol import ZEROCOPY

log = logging.getLogger("registry")
REQUEST_ID_HEADER = "X-Request-Id"
USER_AGENT_LIMIT = 256  # characters of a User-Agent kept in the record
_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode()
_SANE_ID = re.compile(rb"[A-Za-z0-9._:+/=@-]{1,128}")
_current: ContextVar[str | None] = ContextVar("registry_request_id", default=None)
_scope: ContextVar[Scope | None] = ContextVar("registry_request_scope", default=None)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What one request did. ``route`` is the route's name (``registry.routes``; None when no route matched),
    ``repository`` its ``name`` path parameter as sent, ``user`` the account its credentials proved (None when
    anonymous), ``remote_addr`` the client through the trusted proxies (``registry.forwarded``). ``path`` has no
    query string: a query may carry a secret. ``status`` is 500 when the app failed before answering."""

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


def current_request_id() -> str | None:
    """The id of the request being handled by this task, None outside one."""
    return _current.get()


def current_scope() -> Scope | None:
    """The ASGI scope of the request being handled by this task, None outside one: the same mapping the app and the
    middleware inside this one see (registry.forwarded's changes included)."""
    return _scope.get()


def add_observer(app: Starlette, observer: Observer) -> None:
    observers: list[Observer] = app.state.request_observers
    observers.append(observer)


class _Meter:
    __slots__ = ("bytes_in", "bytes_out", "status")

    def __init__(self) -> None:
        self.bytes_in = self.bytes_out = self.status = 0


class RequestObserving:
    def __init__(self, app: ASGIApp, observers: list[Observer]) -> None:
        self.app = app
        self.observers = observers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        request_id, user_agent = _read_headers(scope["headers"])
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

        token, scoped = _current.set(request_id), _scope.set(scope)
        try:
            await self.app(scope, receive_counted, send_counted)
        finally:
            _scope.reset(scoped)
            _current.reset(token)
            if self.observers:
                self._notify(_record(scope, meter, request_id, user_agent, time.perf_counter() - started))

    def _notify(self, record: RequestRecord) -> None:
        for observer in self.observers:
            try:
                observer(record)
            except Exception:
                log.exception("request observer %r failed", observer)


def _read_headers(headers: list[tuple[bytes, bytes]]) -> tuple[str, str | None]:
    request_id: str | None = None
    user_agent: str | None = None
    for name, value in headers:
        if name == _REQUEST_ID_KEY and request_id is None and _SANE_ID.fullmatch(value):
            request_id = value.decode("ascii")
        elif name == b"user-agent" and user_agent is None:
            user_agent = value[:USER_AGENT_LIMIT].decode("latin-1")
    return request_id or new_request_id(), user_agent


def new_request_id() -> str:
    """A random UUID (version 4) from ``random``, reseeded from the OS in each process (forked ones too): a request
    id needs to be unique, not secret, and ``os.urandom`` per request is a system call."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


def _record(scope: Scope, meter: _Meter, request_id: str, user_agent: str | None, duration: float) -> RequestRecord:
    route = scope.get("route")
    params: dict[str, Any] = scope.get("path_params") or {}
    grants = scope["state"].get("grants")
    client = scope.get("client")  # read after the app: registry.forwarded has put the forwarded client there
    name = params.get("name")
    return RequestRecord(
        method=scope["method"],
        path=scope["path"],
        route=getattr(route, "name", None),
        repository=name if isinstance(name, str) else None,
        status=meter.status or 500,
        bytes_in=meter.bytes_in,
        bytes_out=meter.bytes_out,
        duration=duration,
        user=getattr(grants, "subject", None) or None,
        request_id=request_id,
        remote_addr=client[0] if client else None,
        user_agent=user_agent,
    )
