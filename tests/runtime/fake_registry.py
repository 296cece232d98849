"""A tiny in-process registry behind httpx.MockTransport: manifests, blobs with Range, auth challenges, faults."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import zstandard

from runtime.mediatypes import DOCKER_LIST, DOCKER_MANIFEST, OCI_LAYER_GZIP, OCI_LAYER_ZSTD
from runtime.pull import this_platform

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


def publish(registry: FakeRegistry, repo: str, tag: str, tars: list[bytes], arch: str | None = None) -> str:
    """A Docker manifest list with an arm64/v8 entry and an entry for this machine; the layers gzip then zstd."""
    blobs = [gzip.compress(t) if i % 2 == 0 else zstandard.compress(t) for i, t in enumerate(tars)]
    return publish_blobs(registry, repo, tag, blobs, [digest_of(t) for t in tars], arch)


def publish_blobs(
    registry: FakeRegistry, repo: str, tag: str, blobs: list[bytes], diff_ids: list[str], arch: str | None = None
) -> str:
    """`publish` with the layers given compressed (gzip and zstd alternately), and their diff_ids."""
    layers = [
        {"mediaType": OCI_LAYER_GZIP if i % 2 == 0 else OCI_LAYER_ZSTD, **registry.add_blob(b)}
        for i, b in enumerate(blobs)
    ]
    os_name, this_arch, _ = this_platform()
    config = registry.add_blob(
        b'{"architecture":"%s","os":"linux","config":{"Cmd":["/bin/true"]},"rootfs":{"type":"layers","diff_ids":[%s]}}'
        % (this_arch.encode(), b",".join(b'"' + d.encode() + b'"' for d in diff_ids))
    )
    manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": config, "layers": layers}
    digest = registry.add_manifest(repo, "platform", manifest, DOCKER_MANIFEST)
    other = registry.add_manifest(repo, "other", {"schemaVersion": 2, "config": {}, "layers": []}, DOCKER_MANIFEST)
    entries = [
        {"mediaType": DOCKER_MANIFEST, "digest": d, "size": 1, "platform": {"os": os_name, "architecture": a}}
        for d, a in ((other, "s390x"), (digest, arch or this_arch))
    ]
    registry.add_manifest(repo, tag, {"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": entries}, DOCKER_LIST)
    return digest
