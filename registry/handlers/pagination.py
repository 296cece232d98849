"""``n`` and ``last`` for the catalog and tag lists, and the ``Link`` header to the next page."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request

from registry.errors import ErrorCode

MAX_PAGE = 10_000


def page_params(request: Request, default: int = MAX_PAGE) -> tuple[int, str | None]:
    raw = request.query_params.get("n")
    if raw is None or raw == "":
        n = default
    elif raw.isdigit():
        n = int(raw)
    else:
        raise ErrorCode.PAGINATION_NUMBER_INVALID.error({"n": raw})
    return min(n, MAX_PAGE), request.query_params.get("last") or None


def next_link(path: str, n: int, items: list[str], has_more: bool) -> dict[str, str]:
    if not has_more or not items:
        return {}
    return {"Link": f'<{path}?{urlencode({"n": n, "last": items[-1]})}>; rel="next"'}
