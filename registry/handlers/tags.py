"""``/v2/<name>/tags/list``: a repository's tags, sorted, paginated by ``n`` and ``last``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from registry.handlers.base import repo_name, services
from registry.handlers.pagination import next_link, page_params


async def list_tags(request: Request) -> Response:
    name = repo_name(request)
    n, last = page_params(request)
    page = await services(request).tags.page(name, last, n)
    headers = next_link(request, "tags", n, page.tags, page.has_more, name=name)
    return Response(page.body, headers=headers, media_type="application/json")
