"""``/v2/<name>/tags/list``: a repository's tags, sorted, paginated by ``n`` and ``last``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from registry.db import queries
from registry.errors import ErrorCode
from registry.handlers.base import repo_name, services
from registry.handlers.pagination import next_link, page_params


async def list_tags(request: Request) -> Response:
    name = repo_name(request)
    n, last = page_params(request)
    async with services(request).db.read() as session:
        tags = await queries.list_tags(session, name, last, n + 1) if n else []
        if not tags and await queries.repository_id(session, name) is None:
            raise ErrorCode.NAME_UNKNOWN.error({"name": name})
    headers = next_link(request, "tags", n, tags[:n], len(tags) > n, name=name)
    return JSONResponse({"name": name, "tags": tags[:n]}, headers=headers)
