"""Client mistakes and hostile values are 4xx answers, never a 500 (numbers, NUL bytes, odd names)."""

from __future__ import annotations

import httpx
import pytest

from tests.api_helpers import digest_of

BLOB = b"0123456789" * 10
DIGEST = digest_of(BLOB)
HUGE = "9" * 5000


@pytest.mark.parametrize("n", ["\u00b2", "1\u00b2", HUGE, "12345678901234567890", "-1", "1.5"])
@pytest.mark.parametrize("path", ["/v2/_catalog", "/v2/hostile/tags/list"])
async def test_bad_page_size_is_400(client: httpx.AsyncClient, path: str, n: str) -> None:
    await client.post(f"/v2/hostile/blobs/uploads/?digest={DIGEST}", content=BLOB)
    response = await client.get(path, params={"n": n})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == "PAGINATION_NUMBER_INVALID"


@pytest.mark.parametrize("path", ["/v2/_catalog", "/v2/hostile/tags/list"])
async def test_nul_in_last_is_400(client: httpx.AsyncClient, path: str) -> None:
    await client.post(f"/v2/hostile/blobs/uploads/?digest={DIGEST}", content=BLOB)
    response = await client.get(path, params={"last": "a\x00b"})
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("header", [f"bytes=0-{HUGE}", f"bytes={HUGE}-", f"bytes=-{HUGE}", "bytes=\u00b2-5"])
async def test_absurd_range_is_ignored_or_416(client: httpx.AsyncClient, header: str) -> None:
    await client.post(f"/v2/hostile/blobs/uploads/?digest={DIGEST}", content=BLOB)
    response = await client.get(f"/v2/hostile/blobs/{DIGEST}", headers={"Range": header.encode()})
    assert response.status_code in (200, 416), response.text
    if response.status_code == 200:
        assert response.content == BLOB


@pytest.mark.parametrize("content_range", [f"0-{HUGE}", f"{HUGE}-{HUGE}", "0-\u00b2"])
async def test_absurd_content_range_is_416(client: httpx.AsyncClient, content_range: str) -> None:
    location = (await client.post("/v2/hostile/blobs/uploads/")).headers["location"]
    response = await client.patch(location, content=b"abc", headers={"Content-Range": content_range.encode()})
    assert response.status_code == 416, response.text


async def test_nul_in_artifact_type_filter_is_an_empty_list(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v2/hostile/referrers/{DIGEST}", params={"artifactType": "a/b\x00"})
    assert response.status_code == 200, response.text
    assert response.json()["manifests"] == []


@pytest.mark.parametrize("source", ["UPPER/case", "a\x00b", "../etc", ""])
async def test_mount_from_an_invalid_repository_falls_back_to_a_session(client: httpx.AsyncClient, source: str) -> None:
    await client.post(f"/v2/hostile/blobs/uploads/?digest={DIGEST}", content=BLOB)
    response = await client.post("/v2/other/blobs/uploads/", params={"mount": DIGEST, "from": source})
    assert response.status_code == 202, response.text
