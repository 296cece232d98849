"""``/v2/_catalog`` lists only what the caller may pull (as Harbor and Quay do), with ``n``/``last`` pagination exact
after filtering and a ``Link`` only when more visible repositories follow; on SQLite and PostgreSQL.

distribution's api.md "Listing Repositories": the catalog is paginated with ``n`` and ``last``, and "the presence of
the Link header" is how a client knows to continue; distribution itself lists every repository.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.auth import jwt
from tests.api_helpers import client_on, digest_of
from tests.auth.helpers import (
    ISSUER,
    REALM,
    SERVICE,
    basic,
    bearer,
    certificate,
    claims,
    config_with,
    rsa_key,
    token,
    write_htpasswd,
    write_pem,
)
from tests.test_listing import follow

PUBLIC = ["public/base", "public/tools"]
TEAM = ["team/a", "team/app", "team/b"]
OTHERS = [f"{prefix}{i:02d}" for prefix in ("apps/", "m", "zz/") for i in range(12)]
REPOSITORIES = sorted(PUBLIC + TEAM + OTHERS + ["home/alice/x", "home/bob/x", "teamx"])
USERS = {name: f"{name}-pw" for name in ("alice", "bob", "carol", "pusher", "root", "nocat")}
SERVER: dict[str, Any] = {
    "access": [
        {"users": ["alice"], "repositories": ["team/app"], "actions": ["pull"], "catalog": True},
        {"users": ["carol"], "repositories": ["team/*"], "actions": ["pull", "push"], "catalog": True},
        {"users": ["pusher"], "repositories": ["m05"], "actions": ["push"], "catalog": True},
        {"users": ["bob"], "repositories": ["home/${user}/*"], "actions": ["*"], "catalog": True},
        {"users": ["root"], "repositories": ["*"], "actions": ["*"], "catalog": True},
    ],
}


async def _token(client: httpx.AsyncClient, user: str, *scopes: str) -> dict[str, str]:
    query = [("service", SERVICE), *[("scope", scope) for scope in scopes]]
    response = await client.get("/auth/token", params=query, headers=basic(user, USERS[user]))
    assert response.status_code == 200, response.text
    return bearer(response.json()["token"])


async def _create(client: httpx.AsyncClient, headers: dict[str, str], names: list[str]) -> None:
    for name in names:
        data = name.encode()
        url = f"/v2/{name}/blobs/uploads/"
        response = await client.post(url, params={"digest": digest_of(data)}, content=data, headers=headers)
        assert response.status_code == 201, response.text


@asynccontextmanager
async def _service(tmp_path: Path, database_url: str, **extra: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The built-in token service, over the repositories above (pushed by root)."""
    htpasswd = write_htpasswd(tmp_path / "htpasswd", USERS)
    server = SERVER | {"key": str(tmp_path / "token.pem"), "htpasswd": str(htpasswd), **extra}
    auth = {"token": {"service": SERVICE, "issuer": ISSUER, "server": server}}
    async with client_on(config_with(tmp_path, auth, database={"url": database_url})) as client:
        root = await _token(client, "root", *[f"repository:{name}:push,pull" for name in REPOSITORIES])
        await _create(client, root, REPOSITORIES)
        yield client


@pytest.fixture
async def service_client(tmp_path: Path, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with _service(tmp_path, database_url) as client:
        yield client


async def _pages(client: httpx.AsyncClient, headers: dict[str, str], url: str) -> tuple[list[list[str]], list[str]]:
    client.headers.update(headers)
    try:
        return await follow(client, url, "repositories")
    finally:
        for key in headers:
            del client.headers[key]


async def test_pull_on_one_repository_lists_that_one_alone(service_client: httpx.AsyncClient) -> None:
    headers = await _token(service_client, "alice", "registry:catalog:*")
    pages, links = await _pages(service_client, headers, "/v2/_catalog?n=1")
    assert pages == [["team/app"]] and links == []
    pages, links = await _pages(service_client, headers, "/v2/_catalog?n=1&last=team/app")
    assert pages == [[]] and links == []


async def test_a_glob_rule_lists_its_repositories_page_by_page(service_client: httpx.AsyncClient) -> None:
    headers = await _token(service_client, "carol", "registry:catalog:*")
    pages, links = await _pages(service_client, headers, "/v2/_catalog?n=2")
    assert pages == [["team/a", "team/app"], ["team/b"]]  # teamx is no match of team/*
    assert links == ["/v2/_catalog?n=2&last=team%2Fapp"]
    pages, _ = await _pages(service_client, headers, "/v2/_catalog?n=1&last=team/0")  # last need not be visible
    assert pages == [["team/a"], ["team/app"], ["team/b"]]


async def test_push_without_pull_lists_nothing_of_that_repository(service_client: httpx.AsyncClient) -> None:
    headers = await _token(service_client, "pusher", "registry:catalog:*", "repository:m05:push")
    access = jwt.decode(headers["Authorization"].split()[1]).claims["access"]
    assert {"type": "repository", "name": "m05", "actions": ["push"]} in access
    pages, links = await _pages(service_client, headers, "/v2/_catalog?n=1")
    assert pages == [[]] and links == []


async def test_the_user_placeholder_is_the_user_s_name(service_client: httpx.AsyncClient) -> None:
    headers = await _token(service_client, "bob", "registry:catalog:*")
    pages, _ = await _pages(service_client, headers, "/v2/_catalog")
    assert pages == [["home/bob/x"]]


async def test_anonymous_pull_is_listed_to_every_user(tmp_path: Path, database_url: str) -> None:
    async with _service(tmp_path, database_url, anonymouspull=["public/*", "home/${user}/*"]) as client:
        headers = await _token(client, "alice", "registry:catalog:*")
        pages, links = await _pages(client, headers, "/v2/_catalog?n=2")
    assert pages == [["home/alice/x", "public/base"], ["public/tools", "team/app"]] and len(links) == 1


async def test_a_rule_over_every_repository_lists_every_one(service_client: httpx.AsyncClient) -> None:
    headers = await _token(service_client, "root", "registry:catalog:*")
    pages, links = await _pages(service_client, headers, "/v2/_catalog?n=10")
    assert [name for page in pages for name in page] == REPOSITORIES
    assert len(links) == len(pages) - 1 == (len(REPOSITORIES) - 1) // 10


async def test_the_catalog_still_needs_its_own_grant(service_client: httpx.AsyncClient) -> None:
    headers = await _token(service_client, "nocat", "registry:catalog:*")
    response = await service_client.get("/v2/_catalog", headers=headers)
    assert response.status_code == 401
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


# --- a token from another issuer: only its access claim counts ---


@pytest.fixture
async def issuer_client(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    key = rsa_key()
    bundle = write_pem(tmp_path / "root.pem", certificate(key, "token signer"))
    auth = {"token": {"realm": REALM, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(bundle)}}
    async with client_on(config_with(tmp_path, auth, database={"url": database_url})) as client:
        everything = [{"type": "repository", "name": name, "actions": ["push", "pull"]} for name in REPOSITORIES]
        await _create(client, bearer(token(key, claims(everything))), REPOSITORIES)
        yield client, key


@pytest.mark.parametrize(
    ("access", "expected"),
    [
        ([], []),
        ([("team/app", ["pull"]), ("m05", ["push"]), ("zz/03", ["*"]), ("apps/01", ["delete"])], ["team/app", "zz/03"]),
        ([("team/*", ["pull"]), ("not/there", ["pull"])], []),  # a claim names repositories; it holds no globs
    ],
)
async def test_another_issuer_s_token_lists_the_repositories_its_claim_grants_pull_on(
    issuer_client: tuple[httpx.AsyncClient, Any], access: list[tuple[str, list[str]]], expected: list[str]
) -> None:
    client, key = issuer_client
    items = [{"type": "registry", "name": "catalog", "actions": ["*"]}]
    items += [{"type": "repository", "name": name, "actions": actions} for name, actions in access]
    pages, links = await _pages(client, bearer(token(key, claims(items))), "/v2/_catalog?n=1")
    assert [name for page in pages for name in page] == expected
    assert len(links) == max(len(expected) - 1, 0)


async def test_htpasswd_users_list_every_repository(tmp_path: Path, database_url: str) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "pw"})
    auth = {"htpasswd": {"realm": "r", "path": str(htpasswd)}}
    async with client_on(config_with(tmp_path, auth, database={"url": database_url})) as client:
        await _create(client, basic("alice", "pw"), REPOSITORIES[:5])
        pages, _ = await _pages(client, basic("alice", "pw"), "/v2/_catalog?n=2")
    assert [name for page in pages for name in page] == REPOSITORIES[:5]
