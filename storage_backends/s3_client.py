"""The boto3 side of the S3 backend: distribution's ``storage.s3`` parameters, the client, and the one helper every
S3 call goes through (a worker thread, so nothing blocks the event loop; botocore errors become storage errors).

Retries are botocore's "standard" mode: throttling (SlowDown), 500/502/503/504 and dropped or timed-out connections
are retried with exponential backoff and jitter, ``AWS_MAX_ATTEMPTS`` attempts in all (default 5).
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from registry.settings import Bool, Int, Section, Str, Text, Value
from storage_backends.errors import PathNotFound, StorageError

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB  # S3's floor for every part of a multipart upload but the last
MAX_PART_SIZE = 5 * 1024 * MIB
DEFAULT_ATTEMPTS = 5
THREADS = 32  # boto3 calls at once
# a streamed GET keeps its connection between the reads its body takes in the threads: room for one open body per
# thread beside the calls in flight, or urllib3 discards connections ("Connection pool is full") and opens new ones
MAX_CONNECTIONS = 2 * THREADS
_T = TypeVar("_T")
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchUpload"})


def _flag(default: bool) -> Bool:
    return Bool(default, lenient=True)  # distribution's parameters may be strings ("true", from the environment)


def _size(default: int, minimum: int, maximum: int | None = MAX_PART_SIZE) -> Int:
    return Int(default, minimum=minimum, maximum=maximum, lenient=True)


PARAMETERS = Section(  # distribution's storage.s3
    {
        **{"bucket": Text(required=True), "region": Text(required=True), "rootdirectory": Str("")},
        **dict.fromkeys(("regionendpoint", "accesskey", "secretkey", "sessiontoken", "keyid", "objectacl"), Str()),
        **{"secure": _flag(True), "skipverify": _flag(False), "v4auth": _flag(True), "forcepathstyle": _flag(False)},
        **{"encrypt": _flag(False), "accelerate": _flag(False), "usedualstack": _flag(False)},
        "storageclass": Str("STANDARD"),
        "chunksize": _size(10 * MIB, MIN_PART_SIZE),
        "multipartcopythresholdsize": _size(32 * MIB, 0),
        "multipartcopychunksize": _size(32 * MIB, MIN_PART_SIZE),
        "multipartcopymaxconcurrency": _size(100, 1, None),
        **dict.fromkeys(("useragent", "loglevel", "maxthreads"), Value()),  # accepted, as distribution's, unused
    },
    strict=True,
)


@dataclass(frozen=True)
class S3Settings:
    """What the backend needs from ``storage.s3``, checked and typed."""

    bucket: str
    root: str  # "" or a key prefix ending in "/"
    chunksize: int
    copy_threshold: int
    copy_chunksize: int
    copy_concurrency: int
    put_args: dict[str, str]  # extra arguments of every object-creating call (encryption, storage class, ACL)


def endpoint_url(regionendpoint: str | None, secure: bool) -> str | None:
    if not regionendpoint:
        return None
    if "://" in regionendpoint:
        return regionendpoint
    return f"{'https' if secure else 'http'}://{regionendpoint}"


def make_client(
    *,
    region: str,
    endpoint: str | None,
    accesskey: str | None,
    secretkey: str | None,
    sessiontoken: str | None,
    verify: bool,
    pathstyle: bool,
    v4auth: bool,
    accelerate: bool,
    dualstack: bool,
) -> Any:
    """A boto3 S3 client; without keys it uses boto3's default credential chain (env, profile, instance role)."""
    retries: dict[str, Any] = {"mode": os.environ.get("AWS_RETRY_MODE", "standard")}
    retries["total_max_attempts"] = int(os.environ.get("AWS_MAX_ATTEMPTS", DEFAULT_ATTEMPTS))
    s3_options: dict[str, Any] = {"addressing_style": "path" if pathstyle else "auto"}
    if accelerate:
        s3_options["use_accelerate_endpoint"] = True
    config = BotoConfig(
        region_name=region,
        signature_version="s3v4" if v4auth else "s3",
        retries=retries,
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=MAX_CONNECTIONS,
        s3=s3_options,
        use_dualstack_endpoint=dualstack,
        user_agent_extra="pyregistry",
    )
    credentials = {}
    if accesskey and secretkey:
        credentials = {"aws_access_key_id": accesskey, "aws_secret_access_key": secretkey}
        if sessiontoken:
            credentials["aws_session_token"] = sessiontoken
    return _session().client("s3", endpoint_url=endpoint, verify=verify, config=config, **credentials)


@functools.cache
def _session() -> boto3.session.Session:
    """One boto3 session per process: its data loader parses the service models once for every client."""
    return boto3.session.Session()


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_not_found(exc: BaseException) -> bool:
    return error_code(exc) in _NOT_FOUND


class S3Calls:
    """Runs boto3 calls in a pool of THREADS worker threads."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self._pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="s3")

    async def run(self, function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(function, *args, **kwargs))

    async def call(self, operation: str, path: str, **kwargs: Any) -> Any:
        """``client.<operation>(Bucket=..., **kwargs)``; a missing key is PathNotFound, anything else StorageError."""
        try:
            return await self.run(getattr(self.client, operation), Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, path, operation) from exc

    async def maybe(self, operation: str, path: str, **kwargs: Any) -> Any | None:
        """Like ``call``, but None when the key (or upload) does not exist."""
        try:
            return await self.call(operation, path, **kwargs)
        except PathNotFound:
            return None

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def translate(exc: BaseException, path: str, operation: str) -> StorageError:
    if is_not_found(exc):
        return PathNotFound(path)
    detail = error_code(exc) or type(exc).__name__
    return StorageError(path, f"S3 {operation} failed: {detail}")
