"""``/v2/<name>/tags/list`` and ``/v2/_catalog``: sorted, paginated by ``n`` and ``last`` with a ``Link`` header.

spec.md "Content Discovery: Listing Tags" (end-8a, end-8b), "Limiting the Number of Returned Tags",
"Paginating with the last Parameter"; ``_catalog`` follows distribution's api.md "Listing Repositories".
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import httpx
import pytest

from registry.config import Config
from tests.api_helpers import (
    assert_error,
    client_on,
    image_manifest,
    push_blob,
    push_image,
    put_manifest,
)

TAGS = ["v2", "latest", "V1", "1.0", "_x", "a-b", "a.b", "a_b", "zeta"]
LINK = re.compile(r'<([^>]+)>; rel="next"')
REPOSITORIES = ["zeta", "alpha/two", "alpha", "b-c", "alpha/one", "m/n/o", "a0"]


async def tag_all(client: httpx.AsyncClient, name: str, tags: list[str]) -> None:
    await push_blob(client, name, b"config")
    body = image_manifest(b"config", [])
    for tag in tags:
        assert (await put_manifest(client, name, tag, body)).status_code == 201


async def follow(client: httpx.AsyncClient, url: str, key: str) -> tuple[list[list[str]], list[str]]:
    """Every page's items and every Link target, from ``url`` to the page without a Link."""
    pages: list[list[str]] = []
    links: list[str] = []
    while True:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        pages.append(response.json()[key])
        if "Link" not in response.headers:
            return pages, links
        match = LINK.fullmatch(response.headers["Link"])
        assert match is not None, response.headers["Link"]
        url = match.group(1)
        links.append(url)


async def test_tags_sorted(client: httpx.AsyncClient) -> None:
    # "the tags MUST be sorted in lexical ... or ASCIIbetical order (as defined by Go's sort.Strings)"
    await tag_all(client, "list/me", TAGS)
    response = await client.get("/v2/list/me/tags/list")
    assert response.status_code == 200
    assert response.json() == {"name": "list/me", "tags": sorted(TAGS)}
    assert "Link" not in response.headers


async def test_tags_paginated_with_link(client: httpx.AsyncClient) -> None:
    # end-8b: n results per page, each Link <...?n=2&last=X>; rel="next" until the last page
    await tag_all(client, "list/me", TAGS)
    ordered = sorted(TAGS)
    pages, links = await follow(client, "/v2/list/me/tags/list?n=2", "tags")
    assert pages == [ordered[i : i + 2] for i in range(0, len(ordered), 2)]
    assert links == [f"/v2/list/me/tags/list?n=2&last={ordered[i + 1]}" for i in range(0, len(ordered) - 2, 2)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("n=3", ["1.0", "V1", "_x"]),
        ("n=3&last=V1", ["_x", "a-b", "a.b"]),
        ("last=a_b", ["latest", "v2", "zeta"]),
        ("last=b", ["latest", "v2", "zeta"]),
        ("n=100&last=v2", ["zeta"]),
        ("last=zeta", []),
        ("n=0", []),
        ("n=0&last=V1", []),
        ("n=", sorted(TAGS)),
    ],
)
async def test_tags_n_and_last(client: httpx.AsyncClient, query: str, expected: list[str]) -> None:
    # "returns up to <int> tags that appear after <tagname>"; "If n=0, ... an empty list and must not include a Link"
    await tag_all(client, "list/me", TAGS)
    response = await client.get(f"/v2/list/me/tags/list?{query}")
    assert response.status_code == 200
    assert response.json()["tags"] == expected
    more = expected and expected[-1] != sorted(TAGS)[-1]
    assert ("Link" in response.headers) == bool(more)


@pytest.mark.parametrize("n", ["-1", "abc", "1.5", "0x10", " 2"])
@pytest.mark.parametrize("path", ["/v2/list/me/tags/list", "/v2/_catalog"])
async def test_invalid_n(client: httpx.AsyncClient, path: str, n: str) -> None:
    # distribution's PAGINATION_NUMBER_INVALID, 400
    await tag_all(client, "list/me", ["t"])
    assert_error(await client.get(path, params={"n": n}), 400, "PAGINATION_NUMBER_INVALID")


async def test_tags_of_unknown_repository(client: httpx.AsyncClient) -> None:
    # end-8a failure: 404, NAME_UNKNOWN
    await tag_all(client, "list/me", ["t"])
    for name in ("list/other", "list", "list/me/deeper"):
        assert_error(await client.get(f"/v2/{name}/tags/list"), 404, "NAME_UNKNOWN")


async def test_existing_repository_without_tags_lists_none(client: httpx.AsyncClient) -> None:
    # a repository exists once it holds a blob: 200 with an empty list, not NAME_UNKNOWN (distribution alike)
    await push_blob(client, "list/me", b"content")
    response = await client.get("/v2/list/me/tags/list")
    assert response.status_code == 200
    assert response.json() == {"name": "list/me", "tags": []}


async def tag_names(client: httpx.AsyncClient, name: str) -> list[str]:
    response = await client.get(f"/v2/{name}/tags/list")
    assert response.status_code == 200, response.text
    tags: list[str] = response.json()["tags"]
    return tags


@pytest.mark.parametrize("writer", ["this replica", "another replica"])
async def test_tags_list_follows_every_change(config: Config, writer: str) -> None:
    # replicas share only the database: a list one of them keeps must never outlive a change made through another
    async with client_on(config) as reader, client_on(config) as other:
        client = reader if writer == "this replica" else other
        await tag_all(client, "list/me", ["b", "a"])
        assert await tag_names(reader, "list/me") == ["a", "b"]
        await tag_all(client, "list/me", ["c"])
        assert await tag_names(reader, "list/me") == ["a", "b", "c"]
        assert (await client.delete("/v2/list/me/manifests/a")).status_code == 202
        assert await tag_names(reader, "list/me") == ["b", "c"]
        body, digest = await push_image(client, "list/me", "d", seed="second")
        assert (await put_manifest(client, "list/me", "b", body)).status_code == 201  # "b" moves to it
        assert await tag_names(reader, "list/me") == ["b", "c", "d"]
        # deleting a manifest deletes the tags pointing to it
        assert (await client.delete(f"/v2/list/me/manifests/{digest}")).status_code == 202
        assert await tag_names(reader, "list/me") == ["c"]
        assert (await reader.get("/v2/list/me/tags/list?n=1&last=b")).json()["tags"] == ["c"]


async def test_catalog_sorted_and_paginated(client: httpx.AsyncClient) -> None:
    # api.md "Listing Repositories": sorted names, n and last, Link header with rel="next"
    for name in REPOSITORIES:
        await push_blob(client, name, b"content")
    ordered = sorted(REPOSITORIES)
    full = await client.get("/v2/_catalog")
    assert full.status_code == 200
    assert full.json() == {"repositories": ordered}
    assert "Link" not in full.headers

    pages, links = await follow(client, "/v2/_catalog?n=3", "repositories")
    assert pages == [ordered[0:3], ordered[3:6], ordered[6:7]]
    assert links == [f"/v2/_catalog?{urlencode({'n': 3, 'last': ordered[i]})}" for i in (2, 5)]  # last=alpha%2Fone


@pytest.mark.parametrize(("query", "expected"), [("n=0", []), ("last=alpha", ["alpha/one", "alpha/two", "zeta"])])
async def test_catalog_n_and_last(client: httpx.AsyncClient, query: str, expected: list[str]) -> None:
    for name in ("zeta", "alpha/two", "alpha", "alpha/one"):
        await push_blob(client, name, b"content")
    response = await client.get(f"/v2/_catalog?{query}")
    assert response.status_code == 200
    assert response.json()["repositories"] == expected
    assert "Link" not in response.headers


async def test_empty_catalog(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/_catalog")
    assert response.status_code == 200
    assert response.json() == {"repositories": []}
