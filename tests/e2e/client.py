"""Just enough of the registry HTTP API, spoken with httpx, to push and read images by hand."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator

import httpx

from .images import MANIFEST_ACCEPT, Blob, OciImage

LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def next_link(response: httpx.Response) -> str | None:
    match = LINK_NEXT.search(response.headers.get("link", ""))
    return match.group(1) if match else None


def describe(response: httpx.Response) -> str:
    request = response.request
    return f"{request.method} {request.url} -> {response.status_code}\n{response.headers}\n{response.text[:2000]}"


def expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    assert response.status_code in statuses, f"expected HTTP {statuses}, got:\n{describe(response)}"
    return response


class RegistryClient:
    """Just enough of the distribution API to push and read images by hand."""

    def __init__(self, base_url: str, verify: ssl.SSLContext | bool = True) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30, trust_env=False, verify=verify)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def push_blob(self, repo: str, blob: Blob) -> None:
        """Upload with POST (start) + PUT ?digest= (finish) unless the registry already has it."""
        if self.http.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 200:
            return
        start = expect(self.http.post(f"/v2/{repo}/blobs/uploads/"), 202)
        location = httpx.URL(start.headers["location"]).copy_merge_params({"digest": blob.digest})
        done = self.http.put(str(location), content=blob.data, headers={"content-type": "application/octet-stream"})
        expect(done, 201)
        assert done.headers.get("docker-content-digest") in (None, blob.digest), describe(done)

    def put_manifest(self, repo: str, reference: str, manifest: Blob) -> httpx.Response:
        response = self.http.put(
            f"/v2/{repo}/manifests/{reference}", content=manifest.data, headers={"content-type": manifest.media_type}
        )
        expect(response, 201)
        assert response.headers.get("docker-content-digest") == manifest.digest, describe(response)
        return response

    def push_image(self, repo: str, image: OciImage, reference: str | None = None) -> None:
        for blob in image.blobs():
            self.push_blob(repo, blob)
        self.put_manifest(repo, reference or image.manifest.digest, image.manifest)

    def get_manifest(self, repo: str, reference: str) -> httpx.Response:
        return self.http.get(f"/v2/{repo}/manifests/{reference}", headers={"accept": MANIFEST_ACCEPT})

    def paginate(self, first: str, key: str) -> Iterator[list[str]]:
        """Yield each page's `key` list, following `Link: <...>; rel="next"` to the end."""
        url: str | None = first
        seen = set()
        while url is not None:
            assert url not in seen, f"pagination loops back to {url}"
            seen.add(url)
            response = expect(self.http.get(url), 200)
            yield list(response.json().get(key) or [])
            url = next_link(response)
