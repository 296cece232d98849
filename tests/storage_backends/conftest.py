"""The ``backend`` fixture runs every test of the shared suite against each storage backend.

Each test writes only below its own ``prefix``. Teardown deletes that prefix and fails if anything is left
anywhere in the backend, so a test (or backend) that leaks files outside its prefix is caught.
To add a backend, append its name to BACKEND_NAMES and give it a branch in ``make_backend``.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage_backends import PathNotFound, StorageBackend, create_backend
from storage_backends.s3 import S3Backend
from tests.s3server import MotoServer

BACKEND_NAMES = ["filesystem", "inmemory", "s3"]


def make_backend(name: str, tmp_path: Path, moto: MotoServer | None = None) -> StorageBackend:
    if name == "s3" and moto is not None:
        return create_backend("s3", moto.driver_params(suite_bucket(moto), rootdirectory="/suite/root"))
    if name == "filesystem":
        return create_backend("filesystem", {"rootdirectory": str(tmp_path / "root")})
    if name == "inmemory":
        return create_backend("inmemory", {})
    raise ValueError(f"no test setup for backend {name!r}")


@functools.cache
def suite_bucket(moto: MotoServer) -> str:
    """One bucket for the suite: the teardown check proves it is empty again after every test."""
    return moto.create_bucket()


def files_on_disk(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


async def assert_clean_after(backend: StorageBackend, prefix: str) -> None:
    with contextlib.suppress(PathNotFound):
        await backend.delete(prefix)
    leftovers = [info.path async for info in backend.walk("")]
    assert leftovers == [], f"the {backend.name} backend is not empty after deleting {prefix!r}: {leftovers}"


@pytest.fixture
def prefix() -> str:
    return f"suite-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=BACKEND_NAMES)
async def backend(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> AsyncIterator[StorageBackend]:
    moto: MotoServer | None = request.getfixturevalue("moto_s3") if request.param == "s3" else None
    store = make_backend(request.param, tmp_path, moto)
    try:
        yield store
        await assert_clean_after(store, prefix)
        if store.name == "filesystem":
            assert files_on_disk(tmp_path / "root") == [], "staging or temp files left on disk"
        if moto is not None and isinstance(store, S3Backend):
            leftovers = moto.leftovers(store.settings.bucket)
            assert leftovers == [], "staging objects or multipart uploads left in the bucket"
    finally:
        await store.close()
