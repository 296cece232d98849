"""``n`` and ``last`` for the catalog and tag lists, and the ``Link`` header to the next page."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request

from registry.errors import ErrorCode
from registry.handlers.base import is_count

MAX_PAGE = 10_000


def page_params(request: Request, default: int = MAX_PAGE) -> tuple[int, str | None]:
    raw = request.query_params.get("n")
    if raw is None or raw == "":
        n = default
    elif is_count(raw):
        n = int(raw)
    else:
        raise ErrorCode.PAGINATION_NUMBER_INVALID.error({"n": raw})
    last = request.query_params.get("last") or None
    if last is not None and "\x00" in last:
        raise ErrorCode.PAGINATION_NUMBER_INVALID.error({"last": "must not contain NUL"})
    return min(n, MAX_PAGE), last


def next_link(request: Request, route: str, n: int, items: list[str], has_more: bool, **params: str) -> dict[str, str]:
    """The next page's ``Link``, a relative URL built from the route name (spec: "Listing Tags", "Catalog")."""
    if not has_more or not items:
        return {}
    path = request.app.url_path_for(route, **params)
    return {"Link": f'<{path}?{urlencode({"n": n, "last": items[-1]})}>; rel="next"'}
