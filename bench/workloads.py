"""The benchmark workloads: each takes a server base URL and returns one number (see ``Metric``)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

MiB = 1024 * 1024
PIECE = 4 * MiB
CHUNK = 16 * MiB
TIMEOUT = httpx.Timeout(600.0, connect=10.0)
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    higher_is_better: bool


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BlobSource:
    """``size`` bytes as 4 MiB pieces: identical pieces, then a unique last piece, so every blob is new content
    while its digest costs one 4 MiB hash (the shared prefix is hashed once)."""

    def __init__(self, size: int) -> None:
        assert size % CHUNK == 0
        self.size = size
        self.piece = os.urandom(PIECE)
        self.prefix = hashlib.sha256()
        for _ in range(size // PIECE - 1):
            self.prefix.update(self.piece)
        self.counter = 0

    def new(self) -> tuple[str, bytes]:
        self.counter += 1
        tail = self.counter.to_bytes(8, "big") + self.piece[8:]
        digest = self.prefix.copy()
        digest.update(tail)
        return "sha256:" + digest.hexdigest(), tail

    def pieces(self, tail: bytes, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The pieces covering bytes [start, end) (piece-aligned)."""
        last = self.size // PIECE - 1
        for index in range(start // PIECE, (end or self.size) // PIECE):
            yield tail if index == last else self.piece


def _url(client: httpx.Client | httpx.AsyncClient, location: str, **params: str) -> httpx.URL:
    """Resolve a Location against the base URL and merge params into its query (distribution's has ``_state=``)."""
    return client.base_url.join(location).copy_merge_params(params)


def _start_upload(client: httpx.Client, repo: str) -> str:
    response = client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202, (response.status_code, response.text)
    return response.headers["location"]


def _check(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} {response.text}")
    return response


def monolithic_put(client: httpx.Client, source: BlobSource, repo: str) -> tuple[float, str]:
    digest, tail = source.new()
    started = time.perf_counter()
    location = _start_upload(client, repo)
    headers = {"Content-Length": str(source.size), "Content-Type": "application/octet-stream"}
    url = _url(client, location, digest=digest)
    _check(client.put(url, content=source.pieces(tail), headers=headers), 201)
    return source.size / MiB / (time.perf_counter() - started), digest


def streamed_patch(client: httpx.Client, source: BlobSource, repo: str) -> float:
    digest, tail = source.new()
    started = time.perf_counter()
    location = _start_upload(client, repo)
    response = _check(client.patch(_url(client, location), content=source.pieces(tail)), 202)  # chunked encoding
    _check(client.put(_url(client, response.headers["location"], digest=digest)), 201)
    return source.size / MiB / (time.perf_counter() - started)


def chunked_patch(client: httpx.Client, source: BlobSource, repo: str) -> float:
    digest, tail = source.new()
    started = time.perf_counter()
    location = _start_upload(client, repo)
    for start in range(0, source.size, CHUNK):
        headers = {
            "Content-Range": f"{start}-{start + CHUNK - 1}",
            "Content-Length": str(CHUNK),
            "Content-Type": "application/octet-stream",
        }
        body = source.pieces(tail, start, start + CHUNK)
        location = _check(client.patch(_url(client, location), content=body, headers=headers), 202).headers["location"]
    _check(client.put(_url(client, location, digest=digest)), 201)
    return source.size / MiB / (time.perf_counter() - started)


def blob_get(client: httpx.Client, repo: str, digest: str, size: int) -> float:
    started = time.perf_counter()
    received = 0
    with client.stream("GET", f"/v2/{repo}/blobs/{digest}") as response:
        _check(response, 200)
        for chunk in response.iter_raw(PIECE):
            received += len(chunk)
    assert received == size, (received, size)
    return size / MiB / (time.perf_counter() - started)


def blob_get_redirected(client: httpx.Client, repo: str, digest: str, size: int) -> float:
    """The registry's 307, then the blob streamed from its Location (a presigned S3 URL) by a fresh client."""
    started = time.perf_counter()
    redirect = _check(client.get(f"/v2/{repo}/blobs/{digest}"), 307)
    received = 0
    with httpx.stream("GET", redirect.headers["location"], timeout=TIMEOUT, trust_env=False) as response:
        _check(response, 200)
        for chunk in response.iter_raw(PIECE):
            received += len(chunk)
    assert received == size, (received, size)
    return size / MiB / (time.perf_counter() - started)


def s3_direct(s3: Any, bucket: str, source: BlobSource, part_size: int = 10 * MiB) -> dict[str, float]:
    """The S3 server's own speed, with no registry, in MiB/s: a multipart upload from this process (sequential
    ``part_size`` parts, both registries' default chunksize), a server-side CopyObject (a registry's last step of a
    push) and a GET."""
    _, tail = source.new()
    data = b"".join(source.pieces(tail))
    started = time.perf_counter()
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="direct")["UploadId"]
    parts = []
    for number, start in enumerate(range(0, source.size, part_size), 1):
        body = data[start : start + part_size]
        etag = s3.upload_part(Bucket=bucket, Key="direct", UploadId=upload_id, PartNumber=number, Body=body)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(Bucket=bucket, Key="direct", UploadId=upload_id, MultipartUpload={"Parts": parts})
    rates = {"multipart upload": source.size / MiB / (time.perf_counter() - started)}
    started = time.perf_counter()
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "direct"})
    rates["CopyObject"] = source.size / MiB / (time.perf_counter() - started)
    started = time.perf_counter()
    body = s3.get_object(Bucket=bucket, Key="direct")["Body"]
    received = sum(len(chunk) for chunk in iter(lambda: body.read(PIECE), b""))
    assert received == source.size, (received, source.size)
    rates["GET"] = source.size / MiB / (time.perf_counter() - started)
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "direct"}, {"Key": "copy"}]})
    return rates


def range_get_ms(client: httpx.Client, repo: str, digest: str, size: int, count: int = 20) -> float:
    """Mean milliseconds for a Range GET of the last 1 MiB."""
    headers = {"Range": f"bytes={size - MiB}-{size - 1}"}
    started = time.perf_counter()
    for _ in range(count):
        response = _check(client.get(f"/v2/{repo}/blobs/{digest}", headers=headers), 206)
        assert len(response.content) == MiB
    return (time.perf_counter() - started) / count * 1000


def upload_small(client: httpx.Client, repo: str, data: bytes) -> str:
    digest = sha256(data)
    location = _start_upload(client, repo)
    _check(client.put(_url(client, location, digest=digest), content=data), 201)
    return digest


def push_image(client: httpx.Client, repo: str, tag: str, layer: bytes) -> tuple[bytes, str]:
    """A small OCI image: config blob + one small layer + manifest. Returns the manifest bytes and digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    config_bytes = config.encode()
    descriptors = []
    for media_type, data in (
        ("application/vnd.oci.image.config.v1+json", config_bytes),
        ("application/vnd.oci.image.layer.v1.tar+gzip", layer),
    ):
        descriptors.append({"mediaType": media_type, "digest": upload_small(client, repo, data), "size": len(data)})
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptors[0], "layers": descriptors[1:]}
    body = json.dumps(manifest).encode()
    headers = {"Content-Type": OCI_MANIFEST}
    _check(client.put(f"/v2/{repo}/manifests/{tag}", content=body, headers=headers), 201)
    return body, sha256(body)


def wrk(url: str, seconds: int) -> tuple[float, str]:
    """GET requests/sec at 64 connections, and a note if any request failed."""
    command = ["wrk", "-t2", "-c64", f"-d{seconds}s", "-H", f"Accept: {ACCEPT}"]
    result = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 60, check=True)
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    assert match, result.stdout
    errors = re.findall(r"(Non-2xx or 3xx responses: \d+|Socket errors: .*)", result.stdout)
    return float(match.group(1)), "; ".join(errors)


async def _bounded(jobs: list[tuple[str, str, dict[str, object]]], base_url: str, concurrency: int) -> None:
    """Run (method, url, kwargs) requests with at most ``concurrency`` in flight; each must succeed."""
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT, limits=limits) as client:

        async def one(method: str, url: str, kwargs: dict[str, object]) -> None:
            async with semaphore:
                response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
                if response.status_code == 202 and method == "POST":  # no single-POST upload: finish with a PUT
                    location = _url(client, response.headers["location"], **kwargs["params"])  # type: ignore[arg-type]
                    response = await client.put(location, content=kwargs["content"])  # type: ignore[arg-type]
                if response.status_code != 201:
                    raise RuntimeError(f"{method} {url}: {response.status_code} {response.text}")

        await asyncio.gather(*(one(*job) for job in jobs))


def create_repositories(base_url: str, count: int, data: bytes) -> None:
    """``count`` repositories, each with one small blob uploaded by a monolithic POST ?digest=."""
    digest = sha256(data)
    jobs: list[tuple[str, str, dict[str, object]]] = [
        ("POST", f"/v2/catalog/repo{i:05d}/blobs/uploads/", {"params": {"digest": digest}, "content": data})
        for i in range(count)
    ]
    asyncio.run(_bounded(jobs, base_url, 16))


def walk_catalog(client: httpx.Client, expected: int) -> float:
    """Seconds to walk ``_catalog?n=100`` following Link to the end."""
    started = time.perf_counter()
    url: str | None = "/v2/_catalog?n=100"
    seen = 0
    for _ in range(expected // 100 + 100):
        if url is None:
            break
        response = _check(client.get(url), 200)
        seen += len(response.json()["repositories"])
        url = response.links.get("next", {}).get("url")
    elapsed = time.perf_counter() - started
    assert url is None and seen >= expected, (url, seen, expected)
    return elapsed


def create_tags(base_url: str, repo: str, manifest: bytes, count: int) -> None:
    headers = {"Content-Type": OCI_MANIFEST}
    jobs: list[tuple[str, str, dict[str, object]]] = [
        ("PUT", f"/v2/{repo}/manifests/t{i:05d}", {"content": manifest, "headers": headers}) for i in range(count)
    ]
    asyncio.run(_bounded(jobs, base_url, 16))


def list_tags(client: httpx.Client, repo: str, expected: int, count: int = 20) -> float:
    """Seconds for ``count`` full GET tags/list."""
    started = time.perf_counter()
    for _ in range(count):
        tags = _check(client.get(f"/v2/{repo}/tags/list"), 200).json()["tags"]
        assert len(tags) >= expected, len(tags)
    return time.perf_counter() - started


async def _head_load(host: str, port: int, path: str, seconds: float, connections: int) -> tuple[int, int]:
    """Keep-alive HEAD requests over raw sockets; returns (200 responses, other responses)."""
    request = f"HEAD {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: {ACCEPT}\r\n\r\n".encode()
    deadline = time.perf_counter() + seconds
    counts = [0, 0]

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                counts[0 if head.startswith(b"HTTP/1.1 200") else 1] += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return counts[0], counts[1]


def head_rate(base_url: str, path: str, seconds: int, connections: int = 64) -> tuple[float, str]:
    """HEAD requests/sec at 64 connections (wrk 4.1.0 hangs on HEAD responses, so a raw asyncio client instead)."""
    url = httpx.URL(base_url)
    started = time.perf_counter()
    ok, other = asyncio.run(_head_load(url.host, url.port or 80, path, seconds, connections))
    return ok / (time.perf_counter() - started), f"{other} non-200 responses" if other else ""
