"""The app's response headers: ``Retry-After`` on every 429 and 503 (distribution-spec main branch, after v1.1.1:
spec.md "Error Codes": "A ``429 Too Many Requests`` response ... SHOULD include a ``Retry-After`` header per RFC 9110
(section 10.2.3)"; the same for 503, which RFC 9110 section 15.6.4 says it may carry)."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.app import ResponseHeaders, _registry_error
from registry.errors import RETRY_AFTER_SECONDS, ErrorCode, RegistryError
from storage_backends import StorageError
from tests.api_helpers import API_VERSION, API_VERSION_HEADER, app_of, assert_error, push_blob


def tiny_app(response: Response) -> Starlette:
    async def endpoint(request: Request) -> Response:
        return response

    app = Starlette(routes=[Route("/", endpoint)])
    app.add_middleware(ResponseHeaders, extra=[])
    return app


async def get(app: Starlette) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.get("/")


@pytest.mark.parametrize("status", [429, 503])
async def test_error_codes_retry_after_on_every_429_and_503(status: int) -> None:
    response = await get(tiny_app(Response(status_code=status)))
    assert response.status_code == status
    assert response.headers.get_list("Retry-After") == [RETRY_AFTER_SECONDS]
    assert response.headers[API_VERSION_HEADER] == API_VERSION


async def test_error_codes_retry_after_given_is_kept() -> None:
    response = await get(tiny_app(Response(status_code=429, headers={"Retry-After": "60"})))
    assert response.headers.get_list("Retry-After") == ["60"]


@pytest.mark.parametrize("status", [200, 400, 404, 500])
async def test_error_codes_no_retry_after_elsewhere(status: int) -> None:
    assert "Retry-After" not in (await get(tiny_app(Response(status_code=status)))).headers


async def test_error_codes_toomanyrequests_carries_retry_after() -> None:
    async def endpoint(request: Request) -> Response:
        raise ErrorCode.TOOMANYREQUESTS.error()

    app = Starlette(routes=[Route("/", endpoint)], exception_handlers={RegistryError: _registry_error})
    app.add_middleware(ResponseHeaders, extra=[])
    response = await get(app)
    assert_error(response, 429, "TOOMANYREQUESTS")
    assert response.headers["Retry-After"] == RETRY_AFTER_SECONDS


async def test_error_codes_storage_unavailable_is_503_with_retry_after(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = await push_blob(client, "down", b"some bytes")
    backend = app_of(client).state.services.blobs.backend

    async def unavailable(path: str) -> bytes:
        raise StorageError("the storage is down")

    monkeypatch.setattr(backend, "get_content", unavailable)
    response = await client.get(f"/v2/down/blobs/{digest}")
    assert_error(response, 503, "UNAVAILABLE")
    assert response.headers["Retry-After"] == RETRY_AFTER_SECONDS
