"""An upload session whose requests land on different replicas (two apps on one database and one storage, each with
its own process memory): the hash of the bytes so far is saved with the session's size and continued by the next
replica, so the finish reads none of the upload back from storage; a saved hash that is stale or damaged is never
trusted (the bytes are then hashed again from storage), and the digest is always verified.

spec.md "Pushing a blob in chunks" (end-4a, end-5, end-6) and end-4c's ``digest-algorithm``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from registry.config import Config
from registry.content import paths, resumable_hash
from registry.db.engine import Database
from registry.db.models import uploads
from registry.db.sessions import Writer
from tests.api_helpers import OCTET, app_of, client_on, path_of
from tests.conftest import POSTGRES_ADMIN_URL, make_config, postgres_database, s3_config

SHARED = ["filesystem", "s3"] + (["postgres"] if POSTGRES_ADMIN_URL else [])
DATA = random.Random(15).randbytes(300_007)  # not a whole number of blocks
CUTS = [0, 70_001, 200_003, len(DATA)]


@pytest.fixture(params=SHARED)
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Config]:
    """Storage two replicas can share (a directory, an S3 bucket), with SQLite or PostgreSQL metadata."""
    if request.param == "s3":
        yield s3_config(tmp_path, request.getfixturevalue("moto_s3"), REGISTRY_STORAGE_REDIRECT_DISABLE="true")
    elif request.param == "filesystem":
        yield make_config(tmp_path, "filesystem")
    else:
        async with postgres_database() as url:
            yield make_config(tmp_path, "filesystem", REGISTRY_DATABASE_URL=url)


@pytest.fixture
async def replicas(shared: Config) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with client_on(shared) as a, client_on(shared) as b:
        yield a, b


def upload_reads(*clients: httpx.AsyncClient) -> list[str]:
    """Every read of an upload's data from storage (to hash it again) by any of the replicas, from now on."""
    reads: list[str] = []
    for client in clients:
        backend = app_of(client).state.services.uploads.backend
        original = backend.reader

        def reader(
            path: str, offset: int = 0, length: int | None = None, original: object = original
        ) -> AsyncIterator[bytes]:
            if path.startswith(paths.uploads_root()):
                reads.append(path)
            return original(path, offset, length)  # type: ignore[operator, no-any-return]

        backend.reader = reader
    return reads


def digest(algorithm: str, data: bytes = DATA) -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


async def start(client: httpx.AsyncClient, algorithm: str = "sha256") -> str:
    response = await client.post(
        "/v2/cross/blobs/uploads/", params={"digest-algorithm": algorithm}, headers={"Content-Length": "0"}
    )
    assert response.status_code == 202, response.text
    return path_of(response.headers["Location"])


async def patch(client: httpx.AsyncClient, location: str, piece: int) -> str:
    start, end = CUTS[piece], CUTS[piece + 1]
    headers = {"Content-Range": f"{start}-{end - 1}", "Content-Type": OCTET}
    response = await client.patch(location, content=DATA[start:end], headers=headers)
    assert response.status_code == 202, response.text
    assert response.headers["Range"] == f"0-{end - 1}"
    return path_of(response.headers["Location"])


async def finish(client: httpx.AsyncClient, location: str, expected: str, piece: int | None = None) -> httpx.Response:
    body = b"" if piece is None else DATA[CUTS[piece] : CUTS[piece + 1]]
    headers = {"Content-Type": OCTET}
    if body:
        headers["Content-Range"] = f"{CUTS[piece or 0]}-{CUTS[(piece or 0) + 1] - 1}"
    return await client.put(location, params={"digest": expected}, content=body, headers=headers)


async def assert_served(clients: tuple[httpx.AsyncClient, ...], expected: str) -> None:
    for client in clients:
        response = await client.get(f"/v2/cross/blobs/{expected}")
        assert response.status_code == 200, response.text
        assert response.headers["Docker-Content-Digest"] == expected
        assert response.content == DATA


def database_of(client: httpx.AsyncClient) -> Database:
    db: Database = app_of(client).state.services.db
    return db


async def saved_hash(client: httpx.AsyncClient, location: str) -> bytes | None:
    async with database_of(client).read() as session:
        found: bytes | None = await session.scalar(
            select(uploads.c.hash_state).where(uploads.c.id == upload_id(location))
        )
    return found


async def save_hash(client: httpx.AsyncClient, location: str, state: bytes | None) -> None:
    async def work(session: Writer) -> None:
        await session.execute(update(uploads).where(uploads.c.id == upload_id(location)).values(hash_state=state))

    await database_of(client).write(work)


def upload_id(location: str) -> str:
    return location.split("?", 1)[0].rsplit("/", 1)[-1]


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
@pytest.mark.parametrize("finisher", ["first", "second"])
async def test_pushing_a_blob_in_chunks_across_replicas_finishes_without_reading_it_back(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient], algorithm: str, finisher: str
) -> None:
    # POST and the first PATCH on one replica, the second PATCH on the other, the closing PUT (with the last chunk)
    # on either: every request continues the hash the one before saved
    a, b = replicas
    reads = upload_reads(a, b)
    location = await patch(a, await start(a, algorithm), 0)
    location = await patch(b, location, 1)
    finished = await finish(a if finisher == "first" else b, location, digest(algorithm), 2)
    assert finished.status_code == 201, finished.text
    assert finished.headers["Docker-Content-Digest"] == digest(algorithm)
    assert reads == [], "the finish read the upload back from storage"
    await assert_served(replicas, digest(algorithm))


async def test_a_session_started_on_one_replica_hashes_with_its_algorithm_on_another(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    # ?digest-algorithm=sha512 is known to the replica that took the POST only: the saved hash carries it
    a, b = replicas
    reads = upload_reads(a, b)
    location = await start(a, "sha512")
    for piece in range(3):
        location = await patch(b, location, piece)
    finished = await finish(b, location, digest("sha512"))
    assert finished.status_code == 201, finished.text
    assert reads == []


async def test_a_wrong_digest_across_replicas_is_refused(replicas: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    a, b = replicas
    location = await patch(b, await patch(a, await start(a), 0), 1)
    wrong = digest("sha256", DATA[:-1] + b"!")
    finished = await finish(a, location, wrong, 2)
    assert finished.status_code == 400, finished.text
    assert finished.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert (await b.head(f"/v2/cross/blobs/{wrong}")).status_code == 404


@pytest.mark.parametrize("damage", ["older", "flipped", "truncated", "another session's", "none"])
async def test_a_saved_hash_that_does_not_cover_the_sessions_bytes_is_never_trusted(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient], damage: str
) -> None:
    # a hash saved at another size (a version that saved none moved the size on), damaged, of other bytes at the
    # same size, or missing: the finish hashes the bytes again from storage, and the right digest is accepted
    a, b = replicas
    location = await patch(a, await start(a), 0)
    older = await saved_hash(a, location)
    location = await patch(b, location, 1)
    current = await saved_hash(b, location)
    assert older is not None and current is not None and older != current
    other = resumable_hash.new("sha256")
    other.update(bytes(CUTS[2]))  # as many bytes, other ones, saved intact for another session
    replaced = {
        "older": older,
        "flipped": current[:20] + bytes([current[20] ^ 1]) + current[21:],
        "truncated": current[:-1],
        "another session's": resumable_hash.saved_state(other, b"another session"),
        "none": None,
    }[damage]
    await save_hash(a, location, replaced)
    reads = upload_reads(a, b)
    finished = await finish(a, location, digest("sha256"), 2)  # a's own hash stopped at the first chunk
    assert finished.status_code == 201, finished.text
    assert reads == [paths.upload_data_path(upload_id(location))]
    await assert_served(replicas, digest("sha256"))


async def test_without_libcrypto_an_upload_across_replicas_is_hashed_again_from_storage(
    shared: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resumable_hash, "_algorithms", dict)
    async with client_on(shared) as a, client_on(shared) as b:
        reads = upload_reads(a, b)
        location = await patch(b, await patch(a, await start(a), 0), 1)
        assert await saved_hash(a, location) is None
        finished = await finish(a, location, digest("sha256"), 2)
        assert finished.status_code == 201, finished.text
        assert len(reads) == 1
        await assert_served((a, b), digest("sha256"))
