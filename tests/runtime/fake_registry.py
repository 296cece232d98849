"""A tiny in-process registry behind httpx.MockTransport: manifests, blobs with Range, auth challenges, faults."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

TOKEN = "secret-token"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class DroppingStream(httpx.SyncByteStream):
    """Sends the first `keep` bytes, then the connection 'drops'."""

    def __init__(self, data: bytes, keep: int) -> None:
        self.data = data
        self.keep = keep

    def __iter__(self) -> Iterator[bytes]:
        yield self.data[: self.keep]
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


@dataclass
class FakeRegistry:
    auth: str = ""  # "", "basic" or "bearer"
    credentials: tuple[str, str] | None = None  # what the registry (and its token service) accept
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # "repo:ref" -> (media type, data)
    blobs: dict[str, bytes] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)  # digest -> bytes sent before the first drop
    ignore_range: bool = False
    requests: list[httpx.Request] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def add_manifest(self, repo: str, ref: str, doc: dict[str, Any], media_type: str) -> str:
        data = json.dumps(doc).encode()
        digest = digest_of(data)
        self.manifests[f"{repo}:{ref}"] = (media_type, data)
        self.manifests[f"{repo}:{digest}"] = (media_type, data)
        return digest

    def add_blob(self, data: bytes) -> dict[str, Any]:
        self.blobs[digest_of(data)] = data
        return {"digest": digest_of(data), "size": len(data)}

    def _basic_ok(self, request: httpx.Request) -> bool:
        if self.credentials is None:
            return False
        expected = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
        return request.headers.get("authorization") == expected

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host == "auth.test":
            if self.credentials is not None and not self._basic_ok(request):
                return httpx.Response(401)
            return httpx.Response(200, json={"token": TOKEN})
        if self.auth == "bearer" and request.headers.get("authorization") != f"Bearer {TOKEN}":
            header = 'Bearer realm="https://auth.test/token",service="registry.test"'
            return self._error(401, "UNAUTHORIZED", "authentication required", {"www-authenticate": header})
        if self.auth == "basic" and not self._basic_ok(request):
            return self._error(401, "UNAUTHORIZED", "authentication required", {"www-authenticate": 'Basic realm="r"'})
        path = request.url.path
        if path == "/v2/":
            return httpx.Response(200, json={})
        repo, kind, ref = self._split(path)
        if kind == "manifests":
            found = self.manifests.get(f"{repo}:{ref}")
            if found is None:
                return self._error(404, "MANIFEST_UNKNOWN", "manifest unknown to registry")
            return httpx.Response(200, content=found[1], headers={"content-type": found[0]})
        if kind == "blobs" and ref in self.blobs:
            return self._blob(request, ref)
        return self._error(404, "BLOB_UNKNOWN", "blob unknown to registry")

    @staticmethod
    def _split(path: str) -> tuple[str, str, str]:
        rest = path.removeprefix("/v2/")
        for kind in ("manifests", "blobs"):
            marker = f"/{kind}/"
            if marker in rest:
                repo, _, ref = rest.partition(marker)
                return repo, kind, ref
        return rest, "", ""

    def _blob(self, request: httpx.Request, digest: str) -> httpx.Response:
        data = self.blobs[digest]
        start = 0
        range_header = request.headers.get("range")
        if range_header and not self.ignore_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
        body = data[start:]
        status = 206 if start else 200
        headers = {"content-length": str(len(body))}
        if start:
            headers["content-range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        keep = self.drops.pop(digest, None)
        if keep is not None:
            return httpx.Response(status, headers=headers, stream=DroppingStream(body, keep))
        return httpx.Response(status, headers=headers, content=body)

    @staticmethod
    def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.Response(status, json={"errors": [{"code": code, "message": message}]}, headers=headers or {})
