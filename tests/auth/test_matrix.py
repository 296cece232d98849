"""The access matrix: every endpoint x every kind of caller gives exactly the expected status and challenge.

Token spec (``token.md``, "How to authenticate"): a request without sufficient credentials gets 401 with
``WWW-Authenticate: Bearer realm=,service=,scope=``; distribution adds ``error="invalid_token"`` for a token it
cannot trust and ``error="insufficient_scope"`` for one that lacks the access. htpasswd answers ``Basic realm=``.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from registry.auth.jwt import PrivateKey
from tests.api_helpers import UNKNOWN_DIGEST, client_on
from tests.auth.helpers import (
    ISSUER,
    REALM,
    SERVICE,
    certificate,
    claims,
    config_with,
    ec_key,
    rsa_key,
    token,
    write_htpasswd,
    write_pem,
)

REPO = "team/app"
UPLOAD = f"/v2/{REPO}/blobs/uploads/00000000-0000-4000-8000-000000000000"
PULL, PUSH, DELETE = ["pull"], ["pull", "push"], ["delete"]

# method, path, (type, name, actions) needed, status when allowed (empty registry, so mostly "unknown")
ENDPOINTS: list[tuple[str, str, tuple[str, str, list[str]] | None, int]] = [
    ("GET", "/v2/", None, 200),
    ("GET", "/v2/_catalog", ("registry", "catalog", ["*"]), 200),
    ("GET", f"/v2/{REPO}/tags/list", ("repository", REPO, PULL), 404),
    ("GET", f"/v2/{REPO}/manifests/latest", ("repository", REPO, PULL), 404),
    ("HEAD", f"/v2/{REPO}/manifests/latest", ("repository", REPO, PULL), 404),
    ("PUT", f"/v2/{REPO}/manifests/latest", ("repository", REPO, PUSH), 400),
    ("DELETE", f"/v2/{REPO}/manifests/{UNKNOWN_DIGEST}", ("repository", REPO, DELETE), 404),
    ("POST", f"/v2/{REPO}/blobs/uploads/", ("repository", REPO, PUSH), 202),
    ("GET", UPLOAD, ("repository", REPO, PUSH), 404),
    ("PATCH", UPLOAD, ("repository", REPO, PUSH), 404),
    ("PUT", f"{UPLOAD}?digest={UNKNOWN_DIGEST}", ("repository", REPO, PUSH), 404),
    ("DELETE", UPLOAD, ("repository", REPO, PUSH), 404),
    ("GET", f"/v2/{REPO}/blobs/{UNKNOWN_DIGEST}", ("repository", REPO, PULL), 404),
    ("HEAD", f"/v2/{REPO}/blobs/{UNKNOWN_DIGEST}", ("repository", REPO, PULL), 404),
    ("DELETE", f"/v2/{REPO}/blobs/{UNKNOWN_DIGEST}", ("repository", REPO, DELETE), 404),
    ("GET", f"/v2/{REPO}/referrers/{UNKNOWN_DIGEST}", ("repository", REPO, PULL), 200),
]
IDS = [f"{method} {path.replace(UNKNOWN_DIGEST, 'D')}" for method, path, _, _ in ENDPOINTS]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


class Keys:
    def __init__(self) -> None:
        self.root: PrivateKey = rsa_key()
        self.root_cert: x509.Certificate = certificate(self.root, "token signer")
        self.stranger: PrivateKey = ec_key()


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


async def _client(config: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client_on(config) as client:
        yield client


@pytest.fixture
async def token_client(tmp_path: Path, keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    bundle = write_pem(tmp_path / "root.pem", keys.root_cert)
    auth = {"token": {"realm": REALM, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(bundle)}}
    async for client in _client(config_with(tmp_path, auth)):
        yield client


@pytest.fixture
async def basic_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "right"})
    async for client in _client(config_with(tmp_path, {"htpasswd": {"realm": "basic-realm", "path": str(htpasswd)}})):
        yield client


def _access(need: tuple[str, str, list[str]] | None) -> list[dict[str, Any]]:
    return [] if need is None else [{"type": need[0], "name": need[1], "actions": need[2]}]


# caller -> (headers for an endpoint's need, whether it is let in, the challenge's error)
Caller = Callable[[Keys, tuple[str, str, list[str]] | None], dict[str, str]]
TOKEN_CALLERS: dict[str, tuple[Caller, str | None]] = {
    "anonymous": (lambda k, need: {}, None),
    "wrong password": (lambda k, need: basic("alice", "wrong"), None),
    "garbage token": (lambda k, need: bearer("not.a.token"), "invalid_token"),
    "valid user without the scope": (
        lambda k, need: bearer(token(k.root, claims([{"type": "repository", "name": "other/repo", "actions": ["*"]}]))),
        "insufficient_scope",
    ),
    "valid user with the scope": (lambda k, need: bearer(token(k.root, claims(_access(need)))), ""),
    "expired token": (lambda k, need: bearer(token(k.root, claims(_access(need), lifetime=-120))), "invalid_token"),
    "token for another service": (
        lambda k, need: bearer(token(k.root, claims(_access(need), aud="other.service"))),
        "invalid_token",
    ),
    "token signed by another key": (lambda k, need: bearer(token(k.stranger, claims(_access(need)))), "invalid_token"),
}


def _expected_challenge(need: tuple[str, str, list[str]] | None, error: str | None) -> str:
    challenge = f'Bearer realm="{REALM}",service="{SERVICE}"'
    if need is not None:
        challenge += f',scope="{need[0]}:{need[1]}:{",".join(need[2])}"'
    return challenge + (f',error="{error}"' if error else "")


def _request(client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]) -> Any:
    body = b"{}" if method in ("PUT", "PATCH") else None
    return client.request(method, path, headers=headers, content=body)


@pytest.mark.parametrize("caller", list(TOKEN_CALLERS))
@pytest.mark.parametrize(("method", "path", "need", "allowed_status"), ENDPOINTS, ids=IDS)
async def test_token_auth_matrix(
    token_client: httpx.AsyncClient,
    keys: Keys,
    caller: str,
    method: str,
    path: str,
    need: tuple[str, str, list[str]] | None,
    allowed_status: int,
) -> None:
    make_headers, error = TOKEN_CALLERS[caller]
    response = await _request(token_client, method, path, make_headers(keys, need))
    let_in = error == "" or (caller == "valid user without the scope" and need is None)
    if let_in:
        assert response.status_code == allowed_status, response.text
        assert "www-authenticate" not in response.headers
        return
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == _expected_challenge(need, error)
    if method != "HEAD":
        [item] = response.json()["errors"]
        assert item["code"] == "UNAUTHORIZED"
        expected = [] if need is None else [{"Type": need[0], "Name": need[1], "Action": a} for a in need[2]]
        assert item["detail"] == expected


BASIC_CALLERS = {
    "anonymous": ({}, False),
    "wrong password": (basic("alice", "wrong"), False),
    "unknown user": (basic("mallory", "right"), False),
    "malformed basic": ({"Authorization": "Basic !!!notbase64"}, False),
    "bearer token": (bearer("a.b.c"), False),
    "valid user": (basic("alice", "right"), True),
}


@pytest.mark.parametrize("caller", list(BASIC_CALLERS))
@pytest.mark.parametrize(("method", "path", "need", "allowed_status"), ENDPOINTS, ids=IDS)
async def test_htpasswd_auth_matrix(
    basic_client: httpx.AsyncClient,
    caller: str,
    method: str,
    path: str,
    need: tuple[str, str, list[str]] | None,
    allowed_status: int,
) -> None:
    headers, let_in = BASIC_CALLERS[caller]
    response = await _request(basic_client, method, path, headers)
    if let_in:
        assert response.status_code == allowed_status, response.text
        return
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Basic realm="basic-realm"'
    if method != "HEAD":
        assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
