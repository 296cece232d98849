"""The access matrix, generated from the route table (``registry.routes._TABLE``): every route x every method x
every kind of caller gives exactly the expected status and challenge. A route added to the table without a row in
``EXPECTED`` below fails the suite, and so does one whose access rule is not the one its row describes.

Token spec (``token.md``, "How to authenticate"): a request without sufficient credentials gets 401 with
``WWW-Authenticate: Bearer realm=,service=,scope=``; distribution adds ``error="invalid_token"`` for a token it
cannot trust and ``error="insufficient_scope"`` for one that lacks the access. htpasswd answers ``Basic realm=``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import pytest_asyncio
from cryptography import x509
from starlette.routing import Mount, Route

from registry.app import create_app
from registry.auth.jwt import PrivateKey
from registry.routes import _TABLE
from tests.api_helpers import UNKNOWN_DIGEST, client_on
from tests.auth.helpers import (
    ISSUER,
    REALM,
    SERVICE,
    basic,
    bearer,
    certificate,
    claims,
    config_with,
    ec_key,
    rsa_key,
    token,
    write_htpasswd,
    write_pem,
)

ON_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # one app per kind of authentication, for every case

REPO = "team/app"
UUID = "00000000-0000-4000-8000-000000000000"
PULL, PUSH, DELETE = ["pull"], ["pull", "push"], ["delete"]
Need = tuple[str, str, list[str]]


class Row(NamedTuple):
    need: Need | None  # (type, name, actions) the route needs; None: any caller who authenticates
    allowed_status: int  # on an empty registry, so mostly "unknown"
    params: dict[str, str] = {}  # path parameters instead of PARAMS'
    query: str = ""


PARAMS = {"name": REPO, "reference": "latest", "uuid": UUID, "digest": UNKNOWN_DIGEST}
REPOSITORY = "repository"
# (route name, method) -> what it needs and answers when let in. Every (name, method) of the route table needs one.
EXPECTED: dict[tuple[str, str], Row] = {
    ("base", "GET"): Row(None, 200),
    ("catalog", "GET"): Row(("registry", "catalog", ["*"]), 200),
    ("tags", "GET"): Row((REPOSITORY, REPO, PULL), 404),
    ("manifest", "GET"): Row((REPOSITORY, REPO, PULL), 404),
    ("manifest", "HEAD"): Row((REPOSITORY, REPO, PULL), 404),
    ("manifest_put", "PUT"): Row((REPOSITORY, REPO, PUSH), 400),
    ("manifest_del", "DELETE"): Row((REPOSITORY, REPO, DELETE), 404, {"reference": UNKNOWN_DIGEST}),
    ("uploads", "POST"): Row((REPOSITORY, REPO, PUSH), 202),
    ("upload", "GET"): Row((REPOSITORY, REPO, PUSH), 404),
    ("upload_patch", "PATCH"): Row((REPOSITORY, REPO, PUSH), 404),
    ("upload_put", "PUT"): Row((REPOSITORY, REPO, PUSH), 404, query=f"?digest={UNKNOWN_DIGEST}"),
    ("upload_del", "DELETE"): Row((REPOSITORY, REPO, PUSH), 404),
    ("blob", "GET"): Row((REPOSITORY, REPO, PULL), 404),
    ("blob", "HEAD"): Row((REPOSITORY, REPO, PULL), 404),
    ("blob_del", "DELETE"): Row((REPOSITORY, REPO, DELETE), 404),
    ("referrers", "GET"): Row((REPOSITORY, REPO, PULL), 200),
}
ROUTES = [(name, method, path) for path, _, methods, name, _ in _TABLE for method in methods]
IDS = [f"{method} {name}" for name, method, _ in ROUTES]


def test_every_route_of_the_table_has_a_row_and_every_row_a_route() -> None:
    table = {(name, method) for name, method, _ in ROUTES}
    assert sorted(table - set(EXPECTED)) == [], "routes without a row in EXPECTED: describe what each needs"
    assert sorted(set(EXPECTED) - table) == [], "rows for routes that are gone"


def test_the_app_serves_the_table_s_routes_alone(tmp_path: Path) -> None:
    """A route registered beside the table (so outside this matrix and its guard) fails here."""
    served = set()
    for route in create_app(config_with(tmp_path, {"none": {}})).routes:
        if route.name.startswith("ui:"):  # the web UI: its own sign-in, over the same rules (tests/ui)
            continue
        assert isinstance(route, Route) and not isinstance(route, Mount), route
        served |= {(route.name, method) for method in route.methods or ()} - {(route.name, "HEAD")}
    table = {(name, method) for name, method, _ in ROUTES if method != "HEAD"}
    assert served == table


def _row(name: str, method: str) -> Row:
    row = EXPECTED.get((name, method))
    assert row is not None, f"{method} {name}: no row in EXPECTED says what it needs"
    return row


def _url(path: str, row: Row) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: {**PARAMS, **row.params}[m.group(1)], path) + row.query


async def _request(client: httpx.AsyncClient, method: str, url: str, headers: dict[str, str]) -> httpx.Response:
    body = b"{}" if method in ("PUT", "PATCH") else None
    return await client.request(method, url, headers=headers, content=body)


class Keys:
    def __init__(self) -> None:
        self.root: PrivateKey = rsa_key()
        self.root_cert: x509.Certificate = certificate(self.root, "token signer")
        self.stranger: PrivateKey = ec_key()


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def token_client(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    tmp_path = tmp_path_factory.mktemp("token")
    bundle = write_pem(tmp_path / "root.pem", keys.root_cert)
    auth = {"token": {"realm": REALM, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(bundle)}}
    async with client_on(config_with(tmp_path, auth)) as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def basic_client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    tmp_path = tmp_path_factory.mktemp("basic")
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "right"})
    async with client_on(config_with(tmp_path, {"htpasswd": {"realm": "basic-realm", "path": str(htpasswd)}})) as c:
        yield c


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def open_client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with client_on(config_with(tmp_path_factory.mktemp("open"), {"none": {}})) as client:
        yield client


def _access(need: Need | None) -> list[dict[str, Any]]:
    return [] if need is None else [{"type": need[0], "name": need[1], "actions": need[2]}]


# caller -> (headers for a route's need, the challenge's error: "" when let in)
Caller = Callable[[Keys, Need | None], dict[str, str]]
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


def _expected_challenge(need: Need | None, error: str | None) -> str:
    challenge = f'Bearer realm="{REALM}",service="{SERVICE}"'
    if need is not None:
        challenge += f',scope="{need[0]}:{need[1]}:{",".join(need[2])}"'
    return challenge + (f',error="{error}"' if error else "")


@ON_MODULE_LOOP
@pytest.mark.parametrize("caller", list(TOKEN_CALLERS))
@pytest.mark.parametrize(("name", "method", "path"), ROUTES, ids=IDS)
async def test_token_auth_matrix(
    token_client: httpx.AsyncClient, keys: Keys, caller: str, name: str, method: str, path: str
) -> None:
    row = _row(name, method)
    make_headers, error = TOKEN_CALLERS[caller]
    response = await _request(token_client, method, _url(path, row), make_headers(keys, row.need))
    let_in = error == "" or (caller == "valid user without the scope" and row.need is None)
    if let_in:
        assert response.status_code == row.allowed_status, response.text
        assert "www-authenticate" not in response.headers
        return
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == _expected_challenge(row.need, error)
    if method != "HEAD":
        [item] = response.json()["errors"]
        assert item["code"] == "UNAUTHORIZED"
        need = row.need
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


@ON_MODULE_LOOP
@pytest.mark.parametrize("caller", list(BASIC_CALLERS))
@pytest.mark.parametrize(("name", "method", "path"), ROUTES, ids=IDS)
async def test_htpasswd_auth_matrix(
    basic_client: httpx.AsyncClient, caller: str, name: str, method: str, path: str
) -> None:
    row = _row(name, method)
    headers, let_in = BASIC_CALLERS[caller]
    response = await _request(basic_client, method, _url(path, row), headers)
    if let_in:
        assert response.status_code == row.allowed_status, response.text
        return
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Basic realm="basic-realm"'
    if method != "HEAD":
        assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


@ON_MODULE_LOOP
@pytest.mark.parametrize("caller", ["anonymous", "any credentials"])
@pytest.mark.parametrize(("name", "method", "path"), ROUTES, ids=IDS)
async def test_without_auth_every_caller_is_let_in(
    open_client: httpx.AsyncClient, caller: str, name: str, method: str, path: str
) -> None:
    row = _row(name, method)
    headers = {} if caller == "anonymous" else basic("anyone", "anything")
    response = await _request(open_client, method, _url(path, row), headers)
    assert response.status_code == row.allowed_status, response.text
    assert "www-authenticate" not in response.headers
