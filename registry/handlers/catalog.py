"""``/v2/_catalog`` and ``/v2/``: the repositories the caller may pull, sorted and paginated; the API version check."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from registry.auth.catalog import pullable
from registry.db import queries
from registry.handlers.base import services
from registry.handlers.pagination import next_link, page_params


async def api_version(request: Request) -> Response:
    return JSONResponse({})


async def catalog(request: Request) -> Response:
    n, last = page_params(request, default=1000)
    within = pullable(request)
    async with services(request).db.read() as session:
        names = await queries.list_repositories(session, last, n + 1, within) if n else []
    headers = next_link(request, "catalog", n, names[:n], len(names) > n)
    return JSONResponse({"repositories": names[:n]}, headers=headers)
