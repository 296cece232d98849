"""The built-in token service, through the app: the token spec's GET (``token.md``) and OAuth2 POST (``oauth.md``)
forms, grants as the intersection of what was asked and what the rules allow, refresh tokens, and mounts."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.auth import jwt
from tests.api_helpers import client_on, digest_of, push_blob
from tests.auth.helpers import config_with, write_htpasswd

SERVICE = "registry.test"
USERS = {"alice": "alice-pw", "bob": "bob-pw", "root": "root-pw", "carol": "carol-pw"}
SERVER = {
    "key": "KEY",
    "htpasswd": "HTPASSWD",
    "anonymouspull": ["public/*"],
    "groups": {"readers": ["bob"]},
    "access": [
        {"users": ["alice"], "repositories": ["team/*"], "actions": ["pull", "push"]},
        {"groups": ["readers"], "repositories": ["team/*"], "actions": ["pull"]},
        {"users": ["root"], "repositories": ["*"], "actions": ["*"], "catalog": True},
        {"users": ["*"], "repositories": ["home/${user}/*"], "actions": ["pull", "push", "delete"]},
    ],
}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", USERS)
    server = SERVER | {"key": str(tmp_path / "keys" / "token.pem"), "htpasswd": str(htpasswd)}
    auth = {"token": {"service": SERVICE, "issuer": "registry-token-service", "server": server}}
    async with client_on(config_with(tmp_path, auth)) as c:
        yield c


async def get_token(client: httpx.AsyncClient, *scopes: str, user: str | None = None, **params: str) -> Any:
    headers = basic(user, USERS[user]) if user else {}
    query = [("service", SERVICE), *[("scope", s) for s in scopes], *params.items()]
    response = await client.get("/auth/token", params=query, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def access_of(body: dict[str, Any]) -> list[Any]:
    return list(jwt.decode(body["token"]).claims["access"])


def bearer(body: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['token']}"}


async def test_the_challenge_names_the_built_in_service_as_the_realm(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/team/app/tags/list")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="http://registry.test/auth/token",service="{SERVICE}",scope="repository:team/app:pull"'
    )


async def test_get_with_basic_grants_the_intersection_of_asked_and_allowed(client: httpx.AsyncClient) -> None:
    body = await get_token(client, "repository:team/app:pull,push,delete", "repository:other/x:pull", user="alice")
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["token"] == body["access_token"] and body["expires_in"] == 300
    assert access_of(body) == [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]
    claims = jwt.decode(body["token"]).claims
    assert claims["sub"] == "alice" and claims["aud"] == SERVICE and claims["exp"] - claims["nbf"] == 300


async def test_a_group_member_may_pull_but_not_push(client: httpx.AsyncClient) -> None:
    body = await get_token(client, "repository:team/app:pull,push", user="bob")
    assert access_of(body) == [{"type": "repository", "name": "team/app", "actions": ["pull"]}]
    assert (await client.post("/v2/team/app/blobs/uploads/", headers=bearer(body))).status_code == 401
    assert (await client.get("/v2/team/app/tags/list", headers=bearer(body))).status_code == 404


async def test_star_asks_for_every_allowed_action(client: httpx.AsyncClient) -> None:
    assert access_of(await get_token(client, "repository:team/app:*", user="alice"))[0]["actions"] == ["pull", "push"]
    assert access_of(await get_token(client, "repository:team/app:*", user="root"))[0]["actions"] == ["*"]


async def test_the_user_placeholder_gives_each_user_a_namespace(client: httpx.AsyncClient) -> None:
    own = await get_token(client, "repository:home/carol/x:push", user="carol")
    assert access_of(own) == [{"type": "repository", "name": "home/carol/x", "actions": ["push"]}]
    assert access_of(await get_token(client, "repository:home/alice/x:push", user="carol")) == []


async def test_anonymous_tokens_pull_only_what_anonymouspull_allows(client: httpx.AsyncClient) -> None:
    body = await get_token(client, "repository:public/tools:pull,push", "repository:team/app:pull")
    assert access_of(body) == [{"type": "repository", "name": "public/tools", "actions": ["pull"]}]
    assert jwt.decode(body["token"]).claims["sub"] == ""
    assert (await client.get("/v2/public/tools/tags/list", headers=bearer(body))).status_code == 404


async def test_the_catalog_needs_a_rule_that_grants_it(client: httpx.AsyncClient) -> None:
    assert access_of(await get_token(client, "registry:catalog:*", user="alice")) == []
    body = await get_token(client, "registry:catalog:*", user="root")
    assert access_of(body) == [{"type": "registry", "name": "catalog", "actions": ["*"]}]
    assert (await client.get("/v2/_catalog", headers=bearer(body))).json() == {"repositories": []}


async def test_unknown_scope_types_and_malformed_scopes_are_ignored(client: httpx.AsyncClient) -> None:
    body = await get_token(client, "plugin:x:pull", "nonsense", "repository::pull", "repository:team/a:", user="root")
    assert access_of(body) == []


@pytest.mark.parametrize(
    "headers",
    [basic("alice", "wrong"), basic("nobody", "x"), {"Authorization": "Basic %%%"}, {"Authorization": "Bearer x"}],
)
async def test_wrong_credentials_are_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get("/auth/token", params={"service": SERVICE}, headers=headers)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert "token" not in response.text


async def test_a_token_for_another_service_is_not_issued(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/token", params={"service": "elsewhere"}, headers=basic("alice", "alice-pw"))
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


async def test_offline_token_gives_a_refresh_token_that_the_post_form_accepts(client: httpx.AsyncClient) -> None:
    body = await get_token(client, user="alice", offline_token="true", client_id="docker", account="alice")
    refresh = body["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "service": SERVICE, "client_id": "docker"}
    response = await client.post("/auth/token", data=form | {"scope": "repository:team/a:pull repository:team/b:push"})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert access_of(response.json()) == [
        {"type": "repository", "name": "team/a", "actions": ["pull"]},
        {"type": "repository", "name": "team/b", "actions": ["push"]},
    ]
    # the refresh token opens nothing in the registry itself
    response = await client.get("/v2/", headers={"Authorization": f"Bearer {refresh}"})
    assert response.status_code == 401 and 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_the_password_grant_and_access_type_offline(client: httpx.AsyncClient) -> None:
    form = {"grant_type": "password", "username": "alice", "password": "alice-pw", "service": SERVICE}
    offline = {"scope": "repository:team/a:push", "access_type": "offline"}
    response = await client.post("/auth/token", data=form | offline)
    assert response.status_code == 200, response.text
    assert "refresh_token" in response.json()
    assert access_of(response.json()) == [{"type": "repository", "name": "team/a", "actions": ["push"]}]
    wrong = await client.post("/auth/token", data=form | {"password": "nope"})
    assert wrong.status_code == 401


async def test_a_changed_password_ends_the_refresh_token(client: httpx.AsyncClient, tmp_path: Path) -> None:
    refresh = (await get_token(client, user="alice", offline_token="true"))["refresh_token"]
    write_htpasswd(tmp_path / "htpasswd", USERS | {"alice": "new-pw"})
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "service": SERVICE}
    assert (await client.post("/auth/token", data=form)).status_code == 401


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"service": SERVICE}, "unsupported_grant_type"),
        ({"grant_type": "password", "service": "other"}, "invalid_request"),
    ],
)
async def test_malformed_post_forms_are_400(client: httpx.AsyncClient, data: dict[str, str], error: str) -> None:
    response = await client.post("/auth/token", data=data)
    assert response.status_code == 400 and response.json()["error"] == error


async def test_a_post_that_is_no_form_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/token", json={"grant_type": "password"})
    assert response.status_code == 400
    big = await client.post("/auth/token", content=b"a=" + b"x" * 70000, headers={"content-type": _FORM})
    assert big.status_code == 400


_FORM = "application/x-www-form-urlencoded"


async def test_a_bad_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    access = (await get_token(client, user="alice"))["token"]
    for refresh in ("garbage", access):
        form = {"grant_type": "refresh_token", "refresh_token": refresh, "service": SERVICE}
        assert (await client.post("/auth/token", data=form)).status_code == 401


def test_the_signing_key_is_made_on_first_start_with_mode_0600(client: httpx.AsyncClient, tmp_path: Path) -> None:
    key = tmp_path / "keys" / "token.pem"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert b"PRIVATE KEY" in key.read_bytes()


async def _push(client: httpx.AsyncClient, user: str, repo: str, data: bytes) -> str:
    body = await get_token(client, f"repository:{repo}:pull,push", user=user)
    client.headers.update(bearer(body))
    try:
        return await push_blob(client, repo, data)
    finally:
        client.headers.pop("Authorization")


async def test_a_mount_needs_pull_on_its_source_else_it_is_a_plain_session(client: httpx.AsyncClient) -> None:
    digest = await _push(client, "root", "secret/base", b"secret layer")
    assert digest == digest_of(b"secret layer")
    scopes = ("repository:team/app:pull,push", "repository:secret/base:pull")
    alice = bearer(await get_token(client, *scopes, user="alice"))
    url = f"/v2/team/app/blobs/uploads/?mount={digest}&from=secret/base"
    response = await client.post(url, headers=alice)
    assert response.status_code == 202, response.text
    automatic = await client.post(f"/v2/team/app/blobs/uploads/?mount={digest}", headers=alice)
    assert automatic.status_code == 202, "an automatic mount must not look in repositories the caller cannot pull"
    assert (await client.head(f"/v2/team/app/blobs/{digest}", headers=alice)).status_code == 404

    root = bearer(await get_token(client, *scopes, user="root"))
    assert (await client.post(url, headers=root)).status_code == 201


async def test_an_automatic_mount_uses_repositories_the_caller_may_pull(client: httpx.AsyncClient) -> None:
    digest = await _push(client, "alice", "team/base", b"shared layer")
    alice = bearer(await get_token(client, "repository:team/app:pull,push", "repository:team/base:pull", user="alice"))
    response = await client.post(f"/v2/team/app/blobs/uploads/?mount={digest}", headers=alice)
    assert response.status_code == 201, response.text


async def test_the_challenge_for_a_mount_asks_for_pull_on_the_source(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/v2/team/app/blobs/uploads/?mount={digest_of(b'x')}&from=team/base")
    assert 'scope="repository:team/app:pull,push repository:team/base:pull"' in response.headers["www-authenticate"]
