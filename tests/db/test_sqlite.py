"""The SQLite executor's own fast paths, which it decides by itself (``registry.db.sqlite_plain``): a statement
run again takes its plain form, and a lookup of one row by a unique key runs on the event loop; everything else
runs in threads (a busy database: ``tests/test_tag_lists.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Select, bindparam, exists, func, insert, or_, select

from registry.db import migrate, queries, sqlite_plain
from registry.db.engine import Database
from registry.db.models import blobs, manifests, repositories, repository_blobs, tags, uploads, utcnow
from registry.db.sessions import Writer
from registry.db.sqlite import ThreadedReader

DIGEST = "sha256:" + "a" * 64


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/registry.db")
    await migrate.upgrade(database)
    await database.write(_content)
    yield database
    await database.dispose()


async def _content(session: Writer) -> None:
    repo = await queries.ensure_repository(session, "library/app")
    now = utcnow()
    await session.execute(insert(blobs), {"digest": DIGEST, "size": 5, "created_at": now, "protected_until": now})
    await session.execute(insert(repository_blobs), {"repository_id": repo, "blob_digest": DIGEST, "created_at": now})
    row = {"repository_id": repo, "digest": DIGEST, "media_type": "m", "size": 2, "payload": b"{}", "created_at": now}
    manifest = await session.scalar(insert(manifests).values(**row).returning(manifests.c.id))
    await session.execute(
        insert(tags), {"repository_id": repo, "name": "v1", "manifest_id": manifest, "updated_at": now}
    )


class _NoThreads:
    def submit(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a point lookup went to a thread")


async def test_a_point_lookup_run_again_runs_on_the_event_loop(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with database.read() as session:
        assert isinstance(session, ThreadedReader)
        assert await queries.repository_id(session, "library/app") == 1  # first seen: SQLAlchemy, in a thread
        assert (await queries.manifest_by_tag(session, "library/app", "v1")).digest == DIGEST
        assert await queries.linked_blob_size(session, "library/app", DIGEST) == 5
        await queries.list_repositories(session, None, 10)
        monkeypatch.setattr(session, "_executor", _NoThreads())
        assert await queries.repository_id(session, "library/app") == 1
        assert await queries.repository_id(session, "library/none") is None
        assert (await queries.manifest_by_tag(session, "library/app", "v1")).digest == DIGEST
        assert await queries.linked_blob_size(session, "library/app", DIGEST) == 5
        with pytest.raises(AssertionError, match="went to a thread"):
            await queries.list_repositories(session, None, 10)  # a listing is no point lookup


_NAME, _ID = bindparam("name"), bindparam("id")
ONE_ROW: dict[str, Select[Any]] = {
    "a unique column": select(repositories.c.id).where(repositories.c.name == _NAME),
    "a primary key, and more": select(blobs.c.size).where(blobs.c.digest == _NAME, blobs.c.size > 3),
    "a unique index through a join": select(manifests.c.payload)
    .join(repositories, repositories.c.id == manifests.c.repository_id)
    .where(repositories.c.name == _NAME, manifests.c.digest == bindparam("digest")),
    "a chain of joins": select(manifests.c.id)
    .join(tags, tags.c.manifest_id == manifests.c.id)
    .join(repositories, repositories.c.id == tags.c.repository_id)
    .where(repositories.c.name == _NAME, tags.c.name == bindparam("tag")),
    "a literal": select(repositories.c.id).where(repositories.c.name == "library/app"),
    "an aggregate of one row": select(func.count()).select_from(blobs).where(blobs.c.digest == _NAME),
}
MANY_ROWS: dict[str, Select[Any]] = {
    "part of a unique index": select(manifests.c.id).where(manifests.c.digest == _NAME),
    "no equality": select(repositories.c.id).where(repositories.c.name.like(_NAME)),
    "an OR": select(repositories.c.id).where(or_(repositories.c.name == _NAME, repositories.c.id == _ID)),
    "no WHERE": select(repositories.c.id),
    "a table the join does not pin": select(manifests.c.id)
    .join(repositories, repositories.c.id == manifests.c.repository_id)
    .where(repositories.c.name == _NAME),
    "an outer join": select(repositories.c.id)
    .outerjoin(tags, tags.c.repository_id == repositories.c.id)
    .where(repositories.c.name == _NAME),
    "a subquery": select(repositories.c.id).where(repositories.c.id.in_(select(tags.c.repository_id))),
    "a subquery in FROM": select(select(repositories.c.id).subquery()),
}


@pytest.mark.parametrize("name", ONE_ROW)
def test_a_select_pinned_to_one_row_by_unique_keys_is_one_row(name: str) -> None:
    assert sqlite_plain.finds_one_row(ONE_ROW[name])


@pytest.mark.parametrize("name", MANY_ROWS)
def test_a_select_that_may_find_more_rows_is_not(name: str) -> None:
    assert not sqlite_plain.finds_one_row(MANY_ROWS[name])


async def test_only_a_statement_seen_before_is_compiled(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[object] = []
    original = sqlite_plain._compile
    monkeypatch.setattr(sqlite_plain, "_compile", lambda *args: compiled.append(args[0]) or original(*args))
    async with database.read() as session:
        for _ in range(3):  # built for each call: SQLAlchemy runs it, and it is forgotten with it
            assert await session.scalar(select(repositories.c.id).where(repositories.c.name == "library/app")) == 1
        assert compiled == []
        statement = select(repositories.c.id).where(repositories.c.name == "library/app")
        for _ in range(3):
            assert await session.scalar(statement) == 1
        assert compiled == [statement]


async def _twice(database: Database, statement: Any, params: dict[str, Any]) -> tuple[Any, Any]:
    """The rows SQLAlchemy gives (first run) and the plain form gives (second run), in a write transaction."""

    async def work(session: Writer) -> tuple[Any, Any]:
        return (await session.execute(statement, params)).all(), (await session.execute(statement, params)).all()

    return await database.write(work)


@pytest.mark.parametrize(
    "statement",
    [
        select(blobs.c.size, blobs.c.protected_until).where(blobs.c.digest == bindparam("blob")),  # a datetime
        select(func.min(repository_blobs.c.created_at)).where(repository_blobs.c.blob_digest == bindparam("blob")),
        select(exists().where(blobs.c.digest == bindparam("blob"))),  # a boolean
        select(manifests.c.payload, manifests.c.digest).where(manifests.c.digest == bindparam("blob")),  # bytes
    ],
)
async def test_plain_rows_are_what_sqlalchemy_gives(database: Database, statement: Any) -> None:
    by_sqlalchemy, plain = await _twice(database, statement, {"blob": DIGEST})
    assert plain == by_sqlalchemy and len(plain) == 1
    assert [type(value) for value in plain[0]] == [type(value) for value in by_sqlalchemy[0]]
    assert plain[0]._fields == tuple(by_sqlalchemy[0]._fields)


async def test_plain_writes_bind_values_as_sqlalchemy_does(database: Database) -> None:
    created = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    statement = insert(uploads)
    for upload in ("u1", "u2"):  # SQLAlchemy, then the plain form
        row = {"id": upload, "repository_name": "a/b", "size": 3, "created_at": created, "updated_at": created}
        assert (await database.write(lambda s, row=row: s.execute(statement, row))).rowcount == 1
    async with database.read() as session:
        stored = (await session.execute(select(uploads.c.created_at, uploads.c.size).order_by(uploads.c.id))).all()
    assert [tuple(row) for row in stored] == [(created.replace(tzinfo=None), 3)] * 2


async def test_an_insert_leaving_out_a_defaulted_column_gets_its_default_every_time(database: Database) -> None:
    statement = insert(repositories)
    for name in ("no/date", "no/date2"):
        await database.write(lambda s, name=name: s.execute(statement, {"name": name}))
    async with database.read() as session:
        created = (await session.scalars(select(repositories.c.created_at).where(repositories.c.id > 1))).all()
    assert len(created) == 2 and all(c > utcnow().replace(tzinfo=None) - timedelta(minutes=5) for c in created)


async def test_an_expanding_in_runs_again_through_sqlalchemy(database: Database) -> None:
    statement = select(repositories.c.name).where(repositories.c.name.in_(bindparam("names", expanding=True)))
    by_sqlalchemy, again = await _twice(database, statement, {"names": ["library/app", "x", "y"]})
    assert by_sqlalchemy == again == [("library/app",)]
