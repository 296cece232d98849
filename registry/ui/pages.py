"""The UI's pages: the repositories (searched and paged in SQL), a repository's tags, a manifest."""

from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import QueryParams
from starlette.responses import Response

from registry.db import queries, ui_queries
from registry.digests import Digest, looks_like_digest
from registry.errors import RegistryError
from registry.forwarded import base_url
from registry.manifests import INDEX_TYPES
from registry.names import NAME_MAX_LENGTH, is_valid_tag
from registry.ui import details
from registry.ui.visit import UiError, Visit

PAGE = 50
MAX_PAGE = 1000
TAGS_PAGE = 100


def _count(params: QueryParams, key: str, default: int, maximum: int) -> int:
    raw = params.get(key) or ""
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not 1 <= int(raw) <= maximum:
        raise UiError(400, f"{key} must be a number from 1 to {maximum}.")
    return int(raw)


def _text(params: QueryParams, key: str) -> str:
    value = params.get(key, "")
    if "\x00" in value:  # no name holds one, and PostgreSQL takes none in a string
        raise UiError(400, f"{key} must not contain NUL.")
    return value


async def repositories(visit: Visit) -> Response:
    params = visit.request.query_params
    search = _text(params, "q").strip().lower()[:NAME_MAX_LENGTH]
    n, last = _count(params, "n", PAGE, MAX_PAGE), _text(params, "last") or None
    async with visit.services.db.read() as session:
        rows = await ui_queries.repository_page(session, search, last, n + 1, visit.seen().visible)
    more = urlencode({"q": search, "n": n, "last": rows[n - 1].name}) if len(rows) > n else None
    context = {"rows": rows[:n], "search": search, "n": n, "last": last, "more": more}
    return visit.render("repositories.html", context)


def pull_host(visit: Visit) -> str:
    return urlsplit(base_url(visit.request, visit.services.config.http.host)).netloc


async def tags(visit: Visit) -> Response:
    name, params = visit.repo(), visit.request.query_params
    sort = params.get("sort") or "name"
    order = params.get("order") or ("asc" if sort == "name" else "desc")
    if sort not in ui_queries.SORTS or order not in ("asc", "desc"):
        raise UiError(400, "sort is name or pushed, order asc or desc.")
    number = _count(params, "page", 1, 10_000_000)
    async with visit.services.db.read() as session:
        repo_id = await queries.repository_id(session, name)
        if repo_id is None:
            raise UiError(404, "No such repository.")
        offset = (number - 1) * TAGS_PAGE
        rows = await ui_queries.tag_page(session, repo_id, sort, order == "desc", offset, TAGS_PAGE + 1)
        total = await ui_queries.tag_count(session, repo_id)
    shown = [(row, details.index_platforms(row.payload, row.media_type)) for row in rows[:TAGS_PAGE]]
    context = {"name": name, "rows": shown, "total": total, "sort": sort, "order": order, "page": number}
    context |= {"more": len(rows) > TAGS_PAGE, "host": pull_host(visit), "may_delete": visit.may_delete(name)}
    deleted = params.get("deleted", "")
    context["deleted"] = deleted if is_valid_tag(deleted) or looks_like_digest(deleted) else ""
    return visit.render("tags.html", context)


def path_digest(visit: Visit) -> str:
    reference = visit.request.path_params["digest"]
    if not looks_like_digest(reference):
        raise UiError(404, "No such manifest.")
    try:
        return str(Digest.parse(reference))
    except RegistryError:  # an algorithm or an encoding this registry does not take
        raise UiError(404, "No such manifest.") from None


async def manifest(visit: Visit) -> Response:
    name = visit.repo()
    digest = path_digest(visit)
    stored = await visit.services.manifests.get(name, digest)
    parsed = details.parsed(stored.payload, stored.media_type)
    async with visit.services.db.read() as session:
        tagged = await ui_queries.tags_of(session, stored.id)
        children = await ui_queries.children_of(session, stored.id)
        parents = await ui_queries.parents_of(session, stored.id)
        referrers = await queries.referrers(session, name, digest, None)
        size = (await ui_queries.image_sizes(session, [stored.id])).get(stored.id, stored.size)
    config = None
    if parsed is not None and parsed.config is not None:
        config = await details.image_config(visit.services.blobs, name, parsed.config)
    context = {"name": name, "manifest": stored, "parsed": parsed, "tags": tagged, "children": children}
    context |= {"parents": parents, "referrers": details.by_artifact_type(referrers), "config": config, "size": size}
    context |= {"is_index": stored.media_type in INDEX_TYPES, "platform_text": details.platform_text}
    context["artifact_type"] = details.artifact_type(parsed)
    context |= {"host": pull_host(visit), "may_delete": visit.may_delete(name), "payload": _pretty(stored.payload)}
    return visit.render("manifest.html", context)


def _pretty(payload: bytes) -> str:
    try:
        return json.dumps(json.loads(payload), indent=2)
    except ValueError:
        return payload.decode("utf-8", "replace")
