"""Storage on S3 under faults: the in-process registry talks to moto through ``tests/faultproxy.py``.

Transient faults (503 SlowDown, 500 InternalError, an error inside a 200, a dropped connection, a lost response, a
cut body) on every S3 call of a push and a pull are retried away: the push answers 201, the blob reads back with
its digest and the bucket holds nothing but the blob. When retries run out the API answers 503 UNAVAILABLE, the
blob stays invisible and a clean retry succeeds. A cancelled upload aborts its multipart upload.

The first tests check the proxy itself.
"""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, ConnectionClosedError

from registry.config import Config
from tests.api_helpers import assert_error, digest_of, patch_chunk, start_upload
from tests.conftest import make_config, started_client
from tests.faultproxy import (
    FOREVER,
    CutBody,
    DropRequest,
    ErrorIn200,
    ErrorReply,
    Fault,
    FaultProxy,
    LoseResponse,
    Request,
    body_chunks,
)
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, MotoServer

MiB = 1024 * 1024
CHUNKSIZE = 5 * MiB  # S3's smallest part: multipart uploads with few bytes
PATCH_SIZE = 4 * MiB
SMALL = os.urandom(64 * 1024)  # below CHUNKSIZE: one PutObject at commit
BIG = os.urandom(2 * CHUNKSIZE + MiB)  # two full parts and a last one
REPO = "faults/app"

UPLOAD_DATA = r"/docker/registry/v2/uploads/[0-9a-f-]{36}/data"
BLOB_DATA = r"/docker/registry/v2/blobs/sha256/[0-9a-f]{2}/[0-9a-f]{64}/data"
PUT_OBJECT = ("PUT", UPLOAD_DATA + "$", None)
STAGING = ("PUT", r"/docker/registry/v2/uploads/[0-9a-f-]{36}/\.data\.partial$", None)
CREATE_MULTIPART = ("POST", UPLOAD_DATA + r"\?uploads$", None)
UPLOAD_PART = ("PUT", UPLOAD_DATA + r"\?.*partNumber=", None)
COMPLETE = ("POST", UPLOAD_DATA + r"\?uploadId=", None)
ABORT = ("DELETE", UPLOAD_DATA + r"\?uploadId=", None)
COPY = ("PUT", BLOB_DATA + "$", "x-amz-copy-source")
PART_COPY = ("PUT", BLOB_DATA + r"\?.*partNumber=", "x-amz-copy-source")
DELETE_SOURCE = ("DELETE", UPLOAD_DATA + "$", None)
BLOB_GET = ("GET", BLOB_DATA + "$", None)
Target = tuple[str, str, str | None]


# --- the proxy itself ------------------------------------------------------------------------------------------------


def proxied_s3(proxy: FaultProxy, attempts: int) -> Any:
    retries: Any = {"mode": "standard", "total_max_attempts": attempts}
    config = BotoConfig(s3={"addressing_style": "path"}, retries=retries)
    credentials = {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}
    return boto3.client("s3", endpoint_url=proxy.url, region_name=REGION, config=config, **credentials)


@pytest.fixture
def proxy(moto_s3: MotoServer) -> Iterator[FaultProxy]:
    with FaultProxy(moto_s3.endpoint) as running:
        yield running


def test_body_framing() -> None:
    head = [("Transfer-Encoding", "chunked")]
    chunked = b"5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\nNEXT"
    stream = io.BytesIO(chunked)
    assert b"".join(body_chunks(stream, head, until_close=False)) == chunked.removesuffix(b"NEXT")
    assert stream.read() == b"NEXT"  # the next request on the connection is untouched
    stream = io.BytesIO(b"abcdefNEXT")
    assert b"".join(body_chunks(stream, [("Content-Length", "6")], until_close=False)) == b"abcdef"
    assert b"".join(body_chunks(stream, [], until_close=True)) == b"NEXT"
    assert list(body_chunks(io.BytesIO(b"x"), [], until_close=False)) == []  # no framing, not until close: no body


def test_forwards_on_one_kept_alive_connection(proxy: FaultProxy, moto_s3: MotoServer) -> None:
    bucket, s3 = moto_s3.create_bucket(), proxied_s3(proxy, 1)
    s3.put_object(Bucket=bucket, Key="k", Body=io.BytesIO(b"x" * 3 * MiB))  # a file body: Expect: 100-continue
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x" * 3 * MiB
    assert s3.head_object(Bucket=bucket, Key="empty")["ContentLength"] == 0
    with pytest.raises(ClientError, match="404"):
        s3.head_object(Bucket=bucket, Key="missing")
    assert proxy.connections_accepted == 1
    assert proxy.count() == 5 and proxy.count("PUT", "/k$", "forwarded") == 1


def test_error_replies_until_the_rule_is_spent(proxy: FaultProxy, moto_s3: MotoServer) -> None:
    bucket, s3 = moto_s3.create_bucket(), proxied_s3(proxy, 3)
    rule = proxy.add(ErrorReply(503, "SlowDown"), "PUT", "/k$", times=2)
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    assert (rule.matched, rule.fired) == (3, 2)
    proxy.add(ErrorReply(500, "InternalError"), "GET", "/k$", times=FOREVER)
    with pytest.raises(ClientError, match="InternalError"):
        s3.get_object(Bucket=bucket, Key="k")
    assert proxy.count("GET", "/k$", "ErrorReply") == 3


def test_rules_fire_in_order_and_skip(proxy: FaultProxy) -> None:
    first = proxy.add(ErrorReply(), "GET", "/a")
    second = proxy.add(DropRequest(), "GET", "/a", skip=1)
    other = proxy.add(DropRequest(), "PUT", "/a")
    faults = [proxy.decide(Request("GET", "/a?x", "HTTP/1.1")) for _ in range(4)]
    assert faults == [ErrorReply(), None, DropRequest(), None]
    assert (first.fired, second.fired, second.matched, other.matched) == (1, 1, 3, 0)


def test_dropped_request_never_reaches_s3(proxy: FaultProxy, moto_s3: MotoServer) -> None:
    bucket, s3 = moto_s3.create_bucket(), proxied_s3(proxy, 1)
    proxy.add(DropRequest(), "PUT", "/k$")
    with pytest.raises(ConnectionClosedError):
        s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    assert moto_s3.leftovers(bucket) == []


def test_lost_response_reaches_s3(proxy: FaultProxy, moto_s3: MotoServer) -> None:
    bucket, s3 = moto_s3.create_bucket(), proxied_s3(proxy, 1)
    proxy.add(LoseResponse(), "PUT", "/k$")
    with pytest.raises(ConnectionClosedError):
        s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    assert moto_s3.leftovers(bucket) == ["k"]


def test_cut_body_and_error_in_200(proxy: FaultProxy, moto_s3: MotoServer) -> None:
    bucket, s3 = moto_s3.create_bucket(), proxied_s3(proxy, 1)
    s3.put_object(Bucket=bucket, Key="k", Body=b"y" * 100_000)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    proxy.add(CutBody(keep=1000), "GET", "/k")
    with pytest.raises(httpx.RemoteProtocolError, match="received 1000 bytes"):
        httpx.get(url, trust_env=False)
    assert httpx.get(url, trust_env=False).content == b"y" * 100_000
    proxy.add(ErrorIn200("InternalError"), "PUT", "/copy$")
    with pytest.raises(ClientError, match="InternalError"):
        s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "k"})


# --- the registry on S3 through the proxy ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def default_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard mode with its default 5 attempts, whatever this shell says (tests lower it themselves)."""
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)


@dataclass
class S3App:
    client: httpx.AsyncClient
    proxy: FaultProxy
    moto: MotoServer
    bucket: str

    def add(self, fault: Fault, target: Target, **options: Any) -> Any:
        method, path, header = target
        return self.proxy.add(fault, method, path, header=header, **options)

    def leftovers(self) -> list[str]:
        return self.moto.leftovers(self.bucket)


def s3_config(tmp_path: Path, bucket: str, endpoint: str, **env: str) -> Config:
    s3 = {"REGION": REGION, "REGIONENDPOINT": endpoint, "BUCKET": bucket, "ACCESSKEY": ACCESS_KEY}
    s3 |= {"SECRETKEY": SECRET_KEY, "FORCEPATHSTYLE": "true", "CHUNKSIZE": str(CHUNKSIZE)}
    environ = {f"REGISTRY_STORAGE_S3_{key}": value for key, value in s3.items()}
    return make_config(tmp_path, "s3", **{"REGISTRY_STORAGE_REDIRECT_DISABLE": "true", **environ, **env})


@asynccontextmanager
async def s3_app(tmp_path: Path, moto: MotoServer, **env: str) -> AsyncIterator[S3App]:
    """The registry app on a fresh bucket, reaching moto through a fault proxy; blob redirects off unless env says."""
    bucket = moto.create_bucket()
    with FaultProxy(moto.endpoint) as proxy:
        async with started_client(s3_config(tmp_path, bucket, proxy.url, **env)) as client:
            yield S3App(client, proxy, moto, bucket)


Push = Callable[[httpx.AsyncClient, bytes], Awaitable[httpx.Response]]


async def push_monolithic(client: httpx.AsyncClient, data: bytes) -> httpx.Response:
    """A single POST ?digest= with the whole blob (end-4b)."""
    return await client.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": digest_of(data)}, content=data)


async def push_chunked(client: httpx.AsyncClient, data: bytes) -> httpx.Response:
    """POST, PATCHes of PATCH_SIZE with Content-Range, PUT ?digest= (end-5, end-6): the first failure or the PUT's."""
    location = await start_upload(client, REPO)
    for start in range(0, len(data), PATCH_SIZE):
        response = await patch_chunk(client, location, data[start : start + PATCH_SIZE], start)
        if response.status_code != 202:
            return response
    return await client.put(location, params={"digest": digest_of(data)})


def blob_key(data: bytes) -> str:
    encoded = digest_of(data).removeprefix("sha256:")
    return f"docker/registry/v2/blobs/sha256/{encoded[:2]}/{encoded}/data"


async def assert_pushed(app: S3App, push: Push, data: bytes) -> None:
    """201, the blob reads back (through the registry) with its digest, and the bucket holds only the blob."""
    response = await push(app.client, data)
    assert response.status_code == 201, response.text
    fetched = await app.client.get(f"/v2/{REPO}/blobs/{digest_of(data)}")
    assert fetched.status_code == 200, fetched.text
    assert digest_of(fetched.content) == digest_of(data)
    assert app.leftovers() == [blob_key(data)]


@dataclass(frozen=True)
class Transient:
    target: Target
    faults: tuple[Fault, ...]  # met by successive matching requests
    push: Push = push_chunked
    data: bytes = BIG
    env: dict[str, str] = field(default_factory=dict)
    retried: bool = True  # a faulted request is sent again (not so when S3 already applied it and says so)


MULTIPART_COPY = {"REGISTRY_STORAGE_S3_MULTIPARTCOPYTHRESHOLDSIZE": str(CHUNKSIZE)}
MULTIPART_COPY["REGISTRY_STORAGE_S3_MULTIPARTCOPYCHUNKSIZE"] = str(CHUNKSIZE)
SLOWDOWN, INTERNAL = ErrorReply(503, "SlowDown"), ErrorReply(500, "InternalError")
NO_SUCH_UPLOAD = ErrorReply(404, "NoSuchUpload")  # what stores like MinIO answer a complete retried after success
TRANSIENT = {
    "put-object-503-500": Transient(PUT_OBJECT, (SLOWDOWN, INTERNAL), push_monolithic, SMALL),
    "put-object-dropped-lost": Transient(PUT_OBJECT, (DropRequest(), LoseResponse()), push_monolithic, SMALL),
    "staging-503-dropped": Transient(STAGING, (SLOWDOWN, DropRequest())),
    "create-multipart-503-lost": Transient(CREATE_MULTIPART, (SLOWDOWN, LoseResponse())),
    "upload-part-503-dropped": Transient(UPLOAD_PART, (SLOWDOWN, DropRequest())),
    "upload-part-lost": Transient(UPLOAD_PART, (LoseResponse(),)),
    "complete-500-dropped": Transient(COMPLETE, (INTERNAL, DropRequest())),
    "complete-lost": Transient(COMPLETE, (LoseResponse(),)),  # moto, like AWS, accepts the retried complete
    "complete-lost-then-no-such-upload": Transient(COMPLETE, (LoseResponse(), NO_SUCH_UPLOAD), retried=False),
    "complete-error-in-200": Transient(COMPLETE, (ErrorIn200(),)),
    "copy-503-dropped": Transient(COPY, (SLOWDOWN, DropRequest())),
    "copy-lost-error-in-200": Transient(COPY, (LoseResponse(), ErrorIn200())),
    "part-copy-503-lost": Transient(PART_COPY, (SLOWDOWN, LoseResponse()), env=MULTIPART_COPY),
    "delete-source-503-lost": Transient(DELETE_SOURCE, (SLOWDOWN, LoseResponse())),
    "small-blob-get-503-dropped": Transient(BLOB_GET, (SLOWDOWN, DropRequest()), push_monolithic, SMALL),
    "blob-get-503-dropped": Transient(BLOB_GET, (SLOWDOWN, DropRequest())),
    "blob-get-cut-body": Transient(BLOB_GET, (CutBody(keep=MiB + 12345), CutBody(keep=3 * MiB + 1))),
}


@pytest.mark.parametrize("case", TRANSIENT.values(), ids=TRANSIENT.keys())
async def test_transient_faults_are_retried(tmp_path: Path, moto_s3: MotoServer, case: Transient) -> None:
    async with s3_app(tmp_path, moto_s3, **case.env) as app:
        rules = [app.add(fault, case.target) for fault in case.faults]
        await assert_pushed(app, case.push, case.data)
    assert [rule.fired for rule in rules] == [1] * len(rules), "a fault was never injected"
    assert rules[-1].matched > 1 or not case.retried, "the faulted request was never retried"


PERSISTENT = {
    "put-object": (PUT_OBJECT, push_monolithic, SMALL),
    "upload-part": (UPLOAD_PART, push_chunked, BIG),
    "complete": (COMPLETE, push_chunked, BIG),
    "copy": (COPY, push_chunked, BIG),
}


@pytest.mark.parametrize(("target", "push", "data"), PERSISTENT.values(), ids=PERSISTENT.keys())
async def test_retries_run_out(
    tmp_path: Path, moto_s3: MotoServer, monkeypatch: pytest.MonkeyPatch, target: Target, push: Push, data: bytes
) -> None:
    # 503 UNAVAILABLE once AWS_MAX_ATTEMPTS attempts failed; nothing becomes visible; a clean retry then succeeds
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    async with s3_app(tmp_path, moto_s3) as app:
        rule = app.add(SLOWDOWN, target, times=FOREVER)
        assert_error(await push(app.client, data), 503, "UNAVAILABLE")
        assert rule.fired == 2, "AWS_MAX_ATTEMPTS=2 is not honoured"
        assert (await app.client.head(f"/v2/{REPO}/blobs/{digest_of(data)}")).status_code == 404
        assert [key for key in app.leftovers() if "/blobs/" in key] == []
        app.proxy.clear()
        response = await push(app.client, data)
        assert response.status_code == 201, response.text
        fetched = await app.client.get(f"/v2/{REPO}/blobs/{digest_of(data)}")
        assert digest_of(fetched.content) == digest_of(data)


@pytest.mark.parametrize("data", [SMALL, BIG], ids=["small", "streamed"])
async def test_blob_get_when_s3_stays_down(
    tmp_path: Path, moto_s3: MotoServer, monkeypatch: pytest.MonkeyPatch, data: bytes
) -> None:
    # retries run out before the first byte: a clean 503, not a 200 cut short
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    async with s3_app(tmp_path, moto_s3) as app:
        assert (await push_chunked(app.client, data)).status_code == 201
        rule = app.add(SLOWDOWN, BLOB_GET, times=FOREVER)
        assert_error(await app.client.get(f"/v2/{REPO}/blobs/{digest_of(data)}"), 503, "UNAVAILABLE")
        assert rule.fired == 2


@pytest.mark.parametrize("fault", [SLOWDOWN, LoseResponse()], ids=["abort-503", "abort-lost"])
async def test_cancelled_upload_leaves_nothing(tmp_path: Path, moto_s3: MotoServer, fault: Fault) -> None:
    # end-14: DELETE of the session aborts its multipart upload and deletes its staged bytes, despite a faulted abort
    async with s3_app(tmp_path, moto_s3) as app:
        rule = app.add(fault, ABORT)
        location = await start_upload(app.client, REPO)
        for start in (0, PATCH_SIZE):
            response = await patch_chunk(app.client, location, BIG[start : start + PATCH_SIZE], start)
            assert response.status_code == 202, response.text
        assert any(key.startswith("(multipart upload)") for key in app.leftovers()), app.leftovers()
        assert (await app.client.delete(location)).status_code == 204
        assert app.leftovers() == []
    assert rule.fired == 1
