"""The upstream client's auth: Basic, and docker's token flow (401 + ``WWW-Authenticate: Bearer`` -> the token
service with the scope -> the request again with the token); errors as the spec's codes."""

from __future__ import annotations

import base64

import httpx
import pytest

from registry.errors import ErrorCode
from registry.proxy.config import Upstream
from registry.proxy.upstream import UpstreamClient, UpstreamError

BASIC = "Basic " + base64.b64encode(b"alice:secret").decode()
MANIFEST = b'{"schemaVersion": 2}'


def token_registry(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/token":
            if request.headers.get("authorization") != BASIC:
                return httpx.Response(401)
            assert request.url.params["scope"] == "repository:library/app:pull"
            assert request.url.params["service"] == "registry.test"
            return httpx.Response(200, json={"token": "t0k3n", "expires_in": 300})
        if request.headers.get("authorization") != "Bearer t0k3n":
            challenge = (
                'Bearer realm="http://auth.test/token",service="registry.test",scope="repository:library/app:pull"'
            )
            return httpx.Response(
                401, headers={"WWW-Authenticate": challenge}, json={"errors": [{"code": "UNAUTHORIZED"}]}
            )
        return httpx.Response(200, content=MANIFEST, headers={"Docker-Content-Digest": "sha256:" + "a" * 64})

    return httpx.MockTransport(handle)


def client(transport: httpx.MockTransport, **credentials: str) -> UpstreamClient:
    return UpstreamClient(Upstream("", "http://registry.test", "registry.test", **credentials), transport)


async def test_bearer_token_flow_fetches_a_token_once_per_scope() -> None:
    seen: list[httpx.Request] = []
    upstream = client(token_registry(seen), username="alice", password="secret")
    assert (await upstream.get_manifest("library/app", "v1")).body == MANIFEST
    assert (await upstream.head_manifest("library/app", "v2")).digest == "sha256:" + "a" * 64
    assert [r.url.path for r in seen] == [
        "/v2/library/app/manifests/v1",
        "/token",
        "/v2/library/app/manifests/v1",
        "/v2/library/app/manifests/v2",
    ]
    await upstream.close()


async def test_a_token_service_refusing_our_credentials_is_denied() -> None:
    upstream = client(token_registry([]), username="alice", password="wrong")
    with pytest.raises(UpstreamError) as raised:
        await upstream.get_manifest("library/app", "v1")
    assert raised.value.error.code is ErrorCode.DENIED


async def test_basic_auth_is_sent_when_configured() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != BASIC:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        return httpx.Response(200, content=MANIFEST)

    assert (
        await client(httpx.MockTransport(handle), username="alice", password="secret").get_manifest("a", "v1")
    ).body == MANIFEST
    with pytest.raises(UpstreamError) as raised:
        await client(httpx.MockTransport(handle)).get_manifest("a", "v1")
    assert raised.value.error.code is ErrorCode.DENIED


@pytest.mark.parametrize(
    ("status", "body", "code", "unavailable"),
    [
        (404, {"errors": [{"code": "MANIFEST_UNKNOWN"}]}, ErrorCode.MANIFEST_UNKNOWN, False),
        (404, {"errors": [{"code": "NAME_UNKNOWN"}]}, ErrorCode.NAME_UNKNOWN, False),
        (404, None, ErrorCode.MANIFEST_UNKNOWN, False),
        (429, None, ErrorCode.TOOMANYREQUESTS, True),
        (500, None, ErrorCode.UNAVAILABLE, True),
        (502, {"errors": [{"code": "UNKNOWN"}]}, ErrorCode.UNAVAILABLE, True),
    ],
)
async def test_upstream_errors_become_spec_errors(
    status: int, body: object, code: ErrorCode, unavailable: bool
) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, json=body))
    with pytest.raises(UpstreamError) as raised:
        await client(transport).get_manifest("a", "v1")
    assert raised.value.error.code is code
    assert raised.value.unavailable is unavailable


async def test_an_unreachable_upstream_is_unavailable() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(UpstreamError) as raised:
        await client(httpx.MockTransport(handle)).head_blob("a", "sha256:" + "0" * 64)
    assert raised.value.error.code is ErrorCode.UNAVAILABLE and raised.value.unavailable
