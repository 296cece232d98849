"""The finish of an upload whose requests crossed replicas, against one whose did not:
``.venv/bin/python bench/upload_resume.py [--mib 1024] [--patch-mib 64] [--backends filesystem,s3]``.

Two apps in this process stand for two replicas: each its own ``Database`` on one SQLite file and its own storage
backend on one directory or one S3 bucket (moto, over HTTP, as the tests reach it), reached through httpx's ASGI
transport. Each upload is ``POST``, then PATCHes of ``--patch-mib`` (a 4 MiB-piece stream each, with Content-Range),
then an empty ``PUT ?digest=``, the only request timed as "finish". Three ways:

- one replica: every request on the first app;
- crossed: the PATCHes alternate between the apps and the PUT goes to the first, whose own hash stopped two PATCHes
  earlier: it continues the hash the other saved with the session (registry.content.resumable_hash);
- crossed, no saved hash: the same, with libcrypto's hashes made unavailable (``resumable_hash._algorithms`` returns
  none), so the finish hashes the upload again from storage: what every crossed upload cost before the hash was saved.

"read back" counts the upload's bytes read from storage by either app. Every upload is new content.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from registry.app import create_app  # noqa: E402
from registry.config import Config, load_config  # noqa: E402
from registry.content import paths, resumable_hash  # noqa: E402
from registry.db import migrate  # noqa: E402
from registry.db.engine import Database  # noqa: E402
from tests.s3server import MotoServer  # noqa: E402

MIB = 1024 * 1024
PIECE = 4 * MIB
WAYS = ["one replica", "crossed", "crossed, no saved hash"]


@dataclass
class Result:
    patches: float
    finish: float
    read_back: int
    reading: float  # of the finish: from the first read of the upload's bytes to the last, hashing them between
    moving: float  # of the finish: the move of the verified bytes to the blob's path (a copy on S3)


class Replicas:
    """Two apps on one database and one storage, and the bytes of uploads either reads back from storage."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.clients: list[httpx.AsyncClient] = []
        self.read_back = 0
        self.reading = 0.0
        self.moving = 0.0

    @contextlib.asynccontextmanager
    async def started(self) -> AsyncIterator[Replicas]:
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(2):
                database = Database(self.config.database_url)
                stack.push_async_callback(database.dispose)
                await migrate.upgrade(database)
                app = create_app(self.config, database=database)
                await stack.enter_async_context(app.router.lifespan_context(app))
                self._count_reads(app.state.services.uploads.backend)
                self._time_moves(app.state.services.uploads.backend)
                transport = httpx.ASGITransport(app=app)
                client = httpx.AsyncClient(transport=transport, base_url="http://registry.test", timeout=None)
                self.clients.append(await stack.enter_async_context(client))
            yield self

    def _count_reads(self, backend: Any) -> None:
        original = backend.reader

        async def reader(path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
            began = time.perf_counter()
            async for chunk in original(path, offset, length):
                if path.startswith(paths.uploads_root()):
                    self.read_back += len(chunk)
                yield chunk
            if path.startswith(paths.uploads_root()):
                self.reading += time.perf_counter() - began

        backend.reader = reader

    def _time_moves(self, backend: Any) -> None:
        original = backend.move

        async def move(source: str, dest: str) -> None:
            began = time.perf_counter()
            await original(source, dest)
            self.moving += time.perf_counter() - began

        backend.move = move


def pieces(seed: bytes, start: int, end: int) -> Iterator[bytes]:
    """Bytes ``start``..``end`` of an upload: one random 4 MiB block repeated, the seed making each upload new."""
    block = hashlib.sha256(seed).digest() * (PIECE // 32)
    for offset in range(start, end, PIECE):
        yield (seed + block)[: min(PIECE, end - offset)] if offset == 0 else block[: min(PIECE, end - offset)]


async def stream(seed: bytes, start: int, end: int) -> AsyncIterator[bytes]:
    for piece in pieces(seed, start, end):
        yield piece


def digest_of(seed: bytes, size: int) -> str:
    hasher = hashlib.sha256()
    for piece in pieces(seed, 0, size):
        hasher.update(piece)
    return f"sha256:{hasher.hexdigest()}"


async def upload(replicas: Replicas, size: int, patch: int, crossed: bool) -> Result:
    seed = os.urandom(16)
    a, b = replicas.clients
    started = await a.post("/v2/bench/resume/blobs/uploads/", headers={"Content-Length": "0"})
    assert started.status_code == 202, started.text
    location = started.headers["Location"].removeprefix("http://registry.test")
    begin, read_before, reading_before = time.perf_counter(), replicas.read_back, replicas.reading
    moving_before = replicas.moving
    for number, start in enumerate(range(0, size, patch)):
        end = min(start + patch, size)
        client = b if crossed and number % 2 else a
        headers = {"Content-Range": f"{start}-{end - 1}", "Content-Length": str(end - start)}
        response = await client.patch(location, content=stream(seed, start, end), headers=headers)
        assert response.status_code == 202, response.text
        location = response.headers["Location"].removeprefix("http://registry.test")
    patched = time.perf_counter()
    expected = digest_of(seed, size)
    finishing = time.perf_counter()
    finished = await a.put(location, params={"digest": expected}, content=b"")
    assert finished.status_code == 201, finished.text
    finish = time.perf_counter() - finishing
    read_back, reading = replicas.read_back - read_before, replicas.reading - reading_before
    return Result(patched - begin, finish, read_back, reading, replicas.moving - moving_before)


async def measure(config: Config, way: str, size: int, patch: int) -> Result:
    unavailable = way == "crossed, no saved hash"
    saved = resumable_hash._algorithms
    if unavailable:
        resumable_hash._algorithms = dict  # type: ignore[assignment]
    try:
        async with Replicas(config).started() as replicas:
            return await upload(replicas, size, patch, crossed=way != "one replica")
    finally:
        resumable_hash._algorithms = saved


def config_for(tmp: Path, backend: str, moto: MotoServer | None) -> Config:
    environ = {
        "REGISTRY_STORAGE": backend,
        "REGISTRY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/registry.db",
        "REGISTRY_LOG_ACCESSLOG_DISABLED": "true",
    }
    if backend == "filesystem":
        environ["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] = str(tmp / "data")
    elif moto is not None:
        params = moto.driver_params(moto.create_bucket(), rootdirectory="/registry")
        environ |= {f"REGISTRY_STORAGE_S3_{key.upper()}": env_value(value) for key, value in params.items()}
        environ["REGISTRY_STORAGE_REDIRECT_DISABLE"] = "true"
    return load_config(None, environ)


def env_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


async def run(backends: list[str], size: int, patch: int) -> list[str]:
    rows = [
        "| storage | upload | PATCHes | finish (PUT) | read back | of which reading + hashing | moving into blobs/ |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-resume-") as directory:
        moto = MotoServer(Path(directory) / "moto") if "s3" in backends else None
        if moto is not None:
            moto.start()
        try:
            for backend in backends:
                for number, way in enumerate(WAYS):
                    tmp = Path(directory) / f"{backend}-{number}"
                    tmp.mkdir()
                    result = await measure(config_for(tmp, backend, moto), way, size, patch)
                    name = "S3 (moto)" if backend == "s3" else backend
                    rows.append(
                        f"| {name} | {way} | {result.patches:.1f} s | {result.finish * 1000:,.0f} ms "
                        f"| {result.read_back / MIB:,.0f} MiB | {result.reading * 1000:,.0f} ms "
                        f"| {result.moving * 1000:,.0f} ms |"
                    )
                    print(rows[-1], file=sys.stderr)
        finally:
            if moto is not None:
                moto.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024, help="upload size")
    parser.add_argument("--patch-mib", type=int, default=64, help="bytes per PATCH")
    parser.add_argument("--backends", default="filesystem,s3")
    args = parser.parse_args()
    rows = asyncio.run(run(args.backends.split(","), args.mib * MIB, args.patch_mib * MIB))
    print(f"{args.mib} MiB upload in {args.patch_mib} MiB PATCHes, SQLite metadata")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
