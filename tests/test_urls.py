"""Location URLs are built from route names: http.host, http.relativeurls, http.prefix and proxy headers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BASE_URL, make_config, started_client


async def _start_upload_location(
    tmp_path: Path, path: str = "/v2/", headers: dict[str, str] | None = None, **env: str
) -> str:
    location = ""
    async with started_client(make_config(tmp_path, "inmemory", **env)) as client:
        response = await client.post(f"{path}url/test/blobs/uploads/", headers=headers or {})
        assert response.status_code == 202, response.text
        location = response.headers["location"]
    return location


async def test_location_is_absolute_from_the_request_host_by_default(tmp_path: Path) -> None:
    location = await _start_upload_location(tmp_path)
    assert location.startswith(f"{BASE_URL}/v2/url/test/blobs/uploads/")


async def test_location_uses_http_host_when_configured(tmp_path: Path) -> None:
    location = await _start_upload_location(tmp_path, REGISTRY_HTTP_HOST="https://registry.example.com")
    assert location.startswith("https://registry.example.com/v2/url/test/blobs/uploads/")


async def test_location_is_relative_with_relativeurls(tmp_path: Path) -> None:
    location = await _start_upload_location(tmp_path, REGISTRY_HTTP_RELATIVEURLS="true")
    assert location.startswith("/v2/url/test/blobs/uploads/")


async def test_location_follows_forwarded_proto_and_host(tmp_path: Path) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "proxy.example.com:8443"}
    location = await _start_upload_location(tmp_path, headers=headers)
    assert location.startswith("https://proxy.example.com:8443/v2/url/test/blobs/uploads/")


@pytest.mark.parametrize("prefix", ["/registry", "/a/b/"])
async def test_prefix_serves_the_api_under_it_and_in_locations(tmp_path: Path, prefix: str) -> None:
    clean = prefix.rstrip("/")
    location = await _start_upload_location(tmp_path, path=f"{clean}/v2/", REGISTRY_HTTP_PREFIX=prefix)
    assert location.startswith(f"{BASE_URL}{clean}/v2/url/test/blobs/uploads/")
    async with started_client(make_config(tmp_path, "inmemory", REGISTRY_HTTP_PREFIX=prefix)) as client:
        assert (await client.get(f"{clean}/v2/")).status_code == 200
        assert (await client.get("/v2/")).status_code == 404
