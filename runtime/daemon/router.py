"""The route table: ``Route(method, pattern, handler)``, versioned (``/v1.NN/...``) and unversioned paths alike.

A pattern's ``{name}`` matches one path segment, ``{name:path}`` one or more (image names hold slashes:
``/images/{name:path}/json``). Routes are tried in order; the first whose pattern and method match wins, so a
specific route goes before a ``:path`` one that would swallow it. A path that matches no route is a 404
``page not found``; a known path with another method is a 405, as dockerd answers.

Errors become ``{"message": ...}``: ``ApiError`` with its status, the runtime's errors by kind (below), anything
else a 500 with its text (and a traceback in the daemon's log).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

import h11

from ..errors import ConflictError, ContainerNotFound, ImageNotFound, RegistryError, RuntimeFailure, UsageError
from .context import Context
from .http import ApiError, Handler, Query, Reply, Request, json_response, log

VERSION_PREFIX = re.compile(r"^/v(\d+\.\d+)(/.*)$")
MIN_VERSION = (1, 12)
MAX_VERSION = (1, 41)
SEGMENT = re.compile(r"\{(\w+)(?::path)?\}")
STATUS_OF: list[tuple[type[Exception], int]] = [
    (ImageNotFound, 404),
    (ContainerNotFound, 404),
    (ConflictError, 409),
    (UsageError, 400),
    (RegistryError, 500),
    (RuntimeFailure, 500),
]


@dataclass
class Route:
    method: str
    pattern: str
    handler: Handler
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        parts, last = [], 0
        for m in SEGMENT.finditer(self.pattern):
            parts.append(re.escape(self.pattern[last : m.start()]))
            parts.append(f"(?P<{m.group(1)}>.+?)" if m.group(0).endswith(":path}") else f"(?P<{m.group(1)}>[^/]+)")
            last = m.end()
        parts.append(re.escape(self.pattern[last:]))
        self.regex = re.compile("^" + "".join(parts) + "$")


class Router:
    def __init__(self, routes: Sequence[Route], context: Context) -> None:
        self.routes = list(routes)
        self.context = context

    async def dispatch(self, event: h11.Request, body: AsyncIterator[bytes]) -> Reply:
        target = event.target.decode("latin-1")
        raw_path, _, query = target.partition("?")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
        method = event.method.decode("ascii", "replace")
        try:
            version, path = split_version(raw_path)
            request = Request(method, path, version, Query(query), headers, self.context, body_source=body)
            return await self.call(request)
        except Exception as exc:  # noqa: BLE001 (every failure is an answer, never a dropped connection)
            return error_reply(exc, method, raw_path)

    async def call(self, request: Request) -> Reply:
        path_known = False
        for route in self.routes:
            m = route.regex.match(request.path)
            if m is None:
                continue
            path_known = True
            if route.method == request.method or (route.method == "GET" and request.method == "HEAD"):
                request.params = {k: unquote(v) for k, v in m.groupdict().items()}
                return await route.handler(request)
        if path_known:
            raise ApiError(405, "method not allowed")
        raise ApiError(404, "page not found")


def split_version(raw_path: str) -> tuple[str | None, str]:
    m = VERSION_PREFIX.match(raw_path)
    if m is None:
        return None, raw_path
    version = tuple(int(p) for p in m.group(1).split("."))
    if version > MAX_VERSION:
        raise ApiError(400, f"client version {m.group(1)} is too new. Maximum supported API version is 1.41")
    if version < MIN_VERSION:
        raise ApiError(400, f"client version {m.group(1)} is too old. Minimum supported API version is 1.12")
    return m.group(1), m.group(2)


def error_reply(exc: Exception, method: str, path: str) -> Reply:
    if isinstance(exc, ApiError):
        return json_response({"message": exc.message}, exc.status)
    if isinstance(exc, asyncio.CancelledError):
        raise exc
    for kind, status in STATUS_OF:
        if isinstance(exc, kind):
            return json_response({"message": str(exc)}, status)
    log.exception("%s %s failed", method, path)
    return json_response({"message": str(exc) or type(exc).__name__}, 500)
