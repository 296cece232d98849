"""A moto S3 server in its own process: the tests' stand-in for AWS or MinIO, reached over HTTP with boto3.

One server runs per test session (``moto_s3`` fixture in ``tests/conftest.py``); each test makes its own bucket.
"""

from __future__ import annotations

import functools
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config as BotoConfig

from tests.e2e.procs import Daemon, base_env, free_port, missing, wait_until

REGION = "us-east-1"
ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"


def moto_server_path() -> str:
    beside_python = Path(sys.executable).with_name("moto_server")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("moto_server")
    if found is None:
        missing("moto_server is not installed (pip install 'moto[server]'; scripts/test.sh does it)")
    return found


class MotoServer:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        env = {**base_env(), "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        args = [moto_server_path(), "-H", "127.0.0.1", "-p", str(self.port)]
        self.daemon = Daemon("moto_server", args, workdir / "moto.log", env=env)
        self.log_path = self.daemon.log_path
        self.log_title = "moto_server"

    def start(self) -> None:
        self.daemon.start()
        wait_until(self._answers, what="moto_server", daemon=self.daemon)

    def stop(self) -> None:
        self.daemon.stop()

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.endpoint}/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    @functools.cached_property
    def _client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=BotoConfig(s3={"addressing_style": "path"}),
        )

    def client(self) -> Any:
        return self._client

    def create_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def driver_params(self, bucket: str, **extra: Any) -> dict[str, Any]:
        """``storage.s3`` parameters, spelled as in distribution's config.yml, for a bucket on this server."""
        return {
            "region": REGION,
            "regionendpoint": self.endpoint,
            "bucket": bucket,
            "accesskey": ACCESS_KEY,
            "secretkey": SECRET_KEY,
            "forcepathstyle": True,
            **extra,
        }

    def leftovers(self, bucket: str) -> list[str]:
        """Every object and unfinished multipart upload in the bucket: a test must leave none behind."""
        client = self.client()
        found = [obj["Key"] for page in _pages(client, "list_objects_v2", bucket) for obj in page.get("Contents", [])]
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return found + [f"(multipart upload) {upload['Key']}" for upload in uploads]


def _pages(client: Any, operation: str, bucket: str) -> Any:
    return client.get_paginator(operation).paginate(Bucket=bucket)


async def fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> httpx.Response:
    """A request straight to S3, as a client following the registry's redirect makes it."""
    async with httpx.AsyncClient() as direct:
        return await direct.request(method, url, headers=headers)
