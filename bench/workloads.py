"""The benchmark workloads: each takes a server base URL and returns one number (see ``Metric``)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

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
    """``size`` bytes (a whole number of MiB) as 4 MiB pieces: identical pieces, then a unique last piece (shorter
    when ``size`` is not a multiple of 4 MiB), so every blob is new content while its digest costs one last-piece
    hash (the shared prefix is hashed once)."""

    def __init__(self, size: int) -> None:
        assert size % MiB == 0 and size > 0, size
        self.size = size
        self.count = -(-size // PIECE)
        self.tail_size = size - PIECE * (self.count - 1)
        self.piece = os.urandom(PIECE)
        self.prefix = hashlib.sha256()
        for _ in range(self.count - 1):
            self.prefix.update(self.piece)
        self.counter = 0

    def new(self) -> tuple[str, bytes]:
        self.counter += 1
        tail = self.counter.to_bytes(8, "big") + self.piece[8 : self.tail_size]
        digest = self.prefix.copy()
        digest.update(tail)
        return "sha256:" + digest.hexdigest(), tail

    def pieces(self, tail: bytes, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The pieces covering bytes [start, end) (piece-aligned, or ``end`` the blob's size)."""
        for index in range(start // PIECE, -(-(end or self.size) // PIECE)):
            yield tail if index == self.count - 1 else self.piece


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


def streamed_patch(client: httpx.Client, source: BlobSource, repo: str) -> tuple[float, str]:
    digest, tail = source.new()
    started = time.perf_counter()
    location = _start_upload(client, repo)
    response = _check(client.patch(_url(client, location), content=source.pieces(tail)), 202)  # chunked encoding
    _check(client.put(_url(client, response.headers["location"], digest=digest)), 201)
    return source.size / MiB / (time.perf_counter() - started), digest


def chunked_patch(client: httpx.Client, source: BlobSource, repo: str) -> float:
    assert source.size % CHUNK == 0, source.size
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
    """Read with ``recv_into`` on a raw socket into one reused buffer: httpx's reader topped out near 400 MiB/s on
    this machine, measuring the client instead of the server."""
    url = client.base_url
    started = time.perf_counter()
    with socket.create_connection((url.host, url.port or 80)) as sock:
        sock.sendall(f"GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: {url.host}\r\n\r\n".encode())
        received = _drain_response(sock)
    assert received == size, (received, size)
    return size / MiB / (time.perf_counter() - started)


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """A response's status and its headers with lower-case names, from the bytes before the empty line."""
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers


def _read_head(sock: socket.socket, view: memoryview) -> tuple[int, dict[str, str], bytes]:
    """Receive a response's head into ``view``: its status, its headers and the body bytes that came with it."""
    head = b""
    while b"\r\n\r\n" not in head:
        head += _receive(sock, view, len(view), head)
    head, _, early = head.partition(b"\r\n\r\n")
    status, fields = _parse_head(head)
    return status, fields, early


def _receive(sock: socket.socket, view: memoryview, most: int, so_far: bytes) -> memoryview:
    count = sock.recv_into(view, most)
    if not count:
        raise RuntimeError(f"connection closed after {len(so_far)} bytes: {so_far[:200]!r}")
    return view[:count]


def _drain_response(sock: socket.socket) -> int:
    """Read a 200 response with a Content-Length and discard its body; the body's size."""
    view = memoryview(bytearray(PIECE))
    status, fields, early = _read_head(sock, view)
    if status != 200:
        raise RuntimeError(f"GET: {status}")
    length = int(fields["content-length"])
    received = len(early)
    while received < length:
        received += len(_receive(sock, view, min(PIECE, length - received), b""))
    return received


def _read_response(sock: socket.socket, view: memoryview) -> tuple[int, bytes]:
    """The status and whole body of one response on a keep-alive connection, sized by Content-Length or chunked
    (distribution's Go server chunks a long listing)."""
    status, fields, data = _read_head(sock, view)
    if "content-length" in fields:
        length = int(fields["content-length"])
        while len(data) < length:
            data += _receive(sock, view, min(len(view), length - len(data)), data)
        if len(data) != length:
            raise RuntimeError(f"{len(data) - length} bytes after the body")
        return status, data
    if fields.get("transfer-encoding", "").lower() != "chunked":
        raise RuntimeError(f"a response with neither Content-Length nor chunks: {fields}")
    body = bytearray()
    while True:
        while b"\r\n" not in data:
            data += _receive(sock, view, len(view), data)
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        while len(data) < size + 2:  # the chunk and its CRLF; the last chunk (0) is followed by the empty line
            data += _receive(sock, view, len(view), data)
        if size == 0:
            if data != b"\r\n":
                raise RuntimeError(f"trailers or bytes after the last chunk: {data[:200]!r}")
            return status, bytes(body)
        body += data[:size]
        data = data[size + 2 :]


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


@dataclass(frozen=True)
class SetupRequest:
    """One request that fills a server before a measured row (it must answer 201). A ``POST ?digest=`` upload
    answered 202 (distribution has no single-POST upload) is finished with a ``PUT <Location>&digest=``."""

    method: str
    target: str
    body: bytes
    content_type: str = "application/octet-stream"
    digest: str = ""


@dataclass
class Created:
    """How filling one server went: seconds until the last request finished, and the requests whose connection
    broke (each retried once, on a new connection, and then succeeded)."""

    seconds: float = 0.0
    retried: list[str] = field(default_factory=list)


BROKEN = (asyncio.IncompleteReadError, ConnectionError)


class RawConnection:
    """One keep-alive HTTP/1.1 connection speaking just what the setup requests need. httpx's async client costs
    about 3 ms of this process's CPU per request, which on a 2-core machine slows the servers being filled (tens of
    thousands of requests); this costs a small fraction of that."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(
        self, method: str, target: str, body: bytes, content_type: str
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request and read the whole answer: (status, headers with lower-case names, body)."""
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            writer.write(head.encode() + body)
            await writer.drain()
            status, headers = _parse_head(await reader.readuntil(b"\r\n\r\n"))
            if "content-length" in headers:
                data = await reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                data = await self._chunked(reader)
            elif status in (204, 304):
                data = b""
            else:  # no length: the body runs to the end of the connection
                data = await reader.read()
                headers["connection"] = "close"
        except BROKEN:
            self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, data

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        data = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the empty line
                    pass
                return data
            data += (await reader.readexactly(size + 2))[:-2]

    async def send(self, job: SetupRequest) -> tuple[int, str]:
        """``job``, finishing a 202-answered upload with its PUT; (final status, final body)."""
        status, headers, data = await self.request(job.method, job.target, job.body, job.content_type)
        if status == 202 and job.method == "POST" and job.digest:
            location = urlsplit(headers["location"])  # distribution's is absolute, with a _state= query
            query = "&".join(q for q in (location.query, urlencode({"digest": job.digest})) if q)
            status, headers, data = await self.request("PUT", f"{location.path}?{query}", job.body, job.content_type)
        return status, data.decode(errors="replace")

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def _bounded(jobs: list[SetupRequest], base_url: str, concurrency: int) -> Created:
    """Run the jobs over ``concurrency`` keep-alive connections, each taking the next job when its last one is done;
    each must answer 201. A request whose connection breaks (the server closed it without an answer) is retried
    once on a new connection and recorded: this is setup, not a measured row, but the server's behaviour is
    reported."""
    url = httpx.URL(base_url)
    started = time.perf_counter()
    created = Created()
    pending = iter(jobs)  # shared by the workers: each job is taken once

    async def worker() -> None:
        connection = RawConnection(url.host, url.port or 80)
        try:
            for job in pending:
                try:
                    status, text = await connection.send(job)
                except BROKEN as exc:
                    when = time.perf_counter() - started
                    created.retried.append(f"{job.method} {job.target} at {when:.1f} s: {exc!r}")
                    try:
                        status, text = await connection.send(job)
                    except BROKEN as again:
                        raise RuntimeError(f"{job.method} {base_url}{job.target}, retried: {again!r}") from again
                if status != 201:
                    raise RuntimeError(f"{job.method} {base_url}{job.target}: {status} {text}")
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    created.seconds = time.perf_counter() - started
    return created


def _on_all(base_urls: list[str], jobs: list[SetupRequest], concurrency: int = 16) -> dict[str, Created]:
    """The same jobs against every server at once (each over its own ``concurrency`` connections)."""

    async def every() -> list[Created]:
        return await asyncio.gather(*(_bounded(jobs, url, concurrency) for url in base_urls))

    return dict(zip(base_urls, asyncio.run(every()), strict=True))


def create_repositories(base_urls: list[str], count: int, data: bytes) -> dict[str, Created]:
    """``count`` repositories on each server (all at once), each with one small blob uploaded by a monolithic
    POST ?digest= (POST then PUT where the server answers 202)."""
    digest = sha256(data)
    query = urlencode({"digest": digest})
    jobs = [
        SetupRequest("POST", f"/v2/catalog/repo{i:05d}/blobs/uploads/?{query}", data, digest=digest)
        for i in range(count)
    ]
    return _on_all(base_urls, jobs)


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


def create_tags(base_urls: list[str], repo: str, manifest: bytes, count: int) -> dict[str, Created]:
    """``count`` tags on ``repo`` of each server (all at once), each a PUT of the same manifest."""
    jobs = [SetupRequest("PUT", f"/v2/{repo}/manifests/t{i:05d}", manifest, OCI_MANIFEST) for i in range(count)]
    return _on_all(base_urls, jobs)


def list_tags(client: httpx.Client, repo: str, expected: int, count: int = 20) -> float:
    """Seconds for ``count`` full GET tags/list on one keep-alive connection, over a raw socket.

    The client's own work is kept small, as it costs the same against either server: httpx spent about 1 ms of
    client CPU on each 10,000-tag body, http.client with ``json.loads`` 0.75 ms, more than our server's 0.43 ms.
    Each body is checked in full: the first one is decoded and must list at least ``expected`` tags, and each
    later one must be byte-identical to a body that was decoded (nothing changes the tags meanwhile)."""
    url = client.base_url
    request = f"GET /v2/{repo}/tags/list HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n\r\n".encode()
    view = memoryview(bytearray(PIECE))
    checked = None
    with socket.create_connection((url.host, url.port or 80), timeout=TIMEOUT.read) as sock:
        started = time.perf_counter()
        for _ in range(count):
            sock.sendall(request)
            status, body = _read_response(sock, view)
            if status != 200:
                raise RuntimeError(f"GET tags/list: {status} {body[:200]!r}")
            if body != checked:
                tags = json.loads(body)["tags"]
                assert len(tags) >= expected, len(tags)
                checked = body
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


DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass(frozen=True)
class SmallImage:
    """A docker image in registry terms: a config blob, one layer, and the schema 2 manifest naming both."""

    repo: str
    config: bytes
    layer: bytes

    def manifest(self) -> bytes:
        doc = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": len(self.config), "digest": sha256(self.config)},
            "layers": [{"mediaType": DOCKER_LAYER, "size": len(self.layer), "digest": sha256(self.layer)}],
        }
        return json.dumps(doc, indent=3).encode()


def small_images(prefix: str, count: int, layer_size: int) -> list[SmallImage]:
    """``count`` distinct images (random layer, config naming it) in repositories ``<prefix>-<i>``."""
    images = []
    for i in range(count):
        layer = os.urandom(layer_size)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
        }
        images.append(SmallImage(f"{prefix}-{i}", json.dumps(config).encode(), layer))
    return images


async def _stream(data: bytes, piece: int = 32 * 1024) -> AsyncIterator[bytes]:
    """``data`` as an async body of unknown length: httpx sends it chunked, as docker does."""
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


async def _docker_push(client: httpx.AsyncClient, image: SmallImage) -> None:
    """What `docker push` sends for each blob (HEAD: 404, POST, one chunked PATCH, PUT ?digest=), layer first, then
    the config, then the manifest PUT by tag."""
    for blob in (image.layer, image.config):
        digest = sha256(blob)
        head = await client.head(f"/v2/{image.repo}/blobs/{digest}")
        if head.status_code != 404:
            raise RuntimeError(f"HEAD {image.repo} {digest}: {head.status_code}, expected 404 for new content")
        response = _check(await client.post(f"/v2/{image.repo}/blobs/uploads/"), 202)
        headers = {"Content-Type": "application/octet-stream"}
        url = _url(client, response.headers["location"])
        response = _check(await client.patch(url, content=_stream(blob), headers=headers), 202)
        _check(await client.put(_url(client, response.headers["location"], digest=digest)), 201)
    headers = {"Content-Type": DOCKER_MANIFEST}
    _check(await client.put(f"/v2/{image.repo}/manifests/latest", content=image.manifest(), headers=headers), 201)


def concurrent_pushes(base_url: str, images: list[SmallImage]) -> float:
    """Seconds for all ``images`` to be pushed at once, each by its own client (own connection pool)."""

    async def push_all() -> float:
        clients = [httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT) for _ in images]
        try:
            started = time.perf_counter()
            await asyncio.gather(*(_docker_push(c, image) for c, image in zip(clients, images, strict=True)))
            return time.perf_counter() - started
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))

    return asyncio.run(push_all())
