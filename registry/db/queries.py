"""The registry's SQL: a few small async queries over ``registry.db.models``."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update

from registry.db.models import (
    Blob,
    Manifest,
    ManifestBlob,
    ManifestReference,
    Repository,
    RepositoryBlob,
    Tag,
    Upload,
    utcnow,
)
from registry.db.sessions import Reader, Writer, plain


def _insert(session: Writer, model: Any) -> Any:
    # imported here: the PostgreSQL dialect is a sizeable share of the start-up time of a SQLite registry
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(model)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(model)


_DIALECT_STATEMENTS: dict[tuple[str, str, Any], Any] = {}


def _for_dialect(session: Writer, kind: str, model: Any, build: Callable[[Any], Any]) -> Any:
    """A dialect-specific statement, built once (building a statement costs more than running it)."""
    key = (session.get_bind().dialect.name, kind, model)
    statement = _DIALECT_STATEMENTS.get(key)
    if statement is None:
        statement = _DIALECT_STATEMENTS[key] = plain(build(_insert(session, model)))
    return statement


async def _insert_ignore(session: Writer, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        statement = _for_dialect(session, "ignore", model, lambda insert: insert.on_conflict_do_nothing())
        await session.execute(statement, rows[0] if len(rows) == 1 else rows)


# repositories


_REPOSITORY_ID = plain(select(Repository.id).where(Repository.name == bindparam("name")))
_REPOSITORY_ID_LOCKED = _REPOSITORY_ID.with_for_update()


async def repository_id(session: Reader, name: str, *, lock: bool = False) -> int | None:
    """With ``lock``, writers to one repository queue up on its row (PostgreSQL; SQLite writers are serial anyway),
    so a manifest's checks and its insert see the same links and manifests."""
    found: int | None = await session.scalar(_REPOSITORY_ID_LOCKED if lock else _REPOSITORY_ID, {"name": name})
    return found


async def ensure_repository(session: Writer, name: str) -> int:
    await _insert_ignore(session, Repository, [{"name": name, "created_at": utcnow()}])
    repo_id = await repository_id(session, name, lock=True)
    assert repo_id is not None
    return repo_id


# The reads every pull makes are built once, with bind parameters: building a statement costs more than running it.
_REPOSITORIES = plain(select(Repository.name).order_by(Repository.name).limit(bindparam("limit")))
_REPOSITORIES_AFTER = _REPOSITORIES.where(Repository.name > bindparam("last"))


async def list_repositories(session: Reader, last: str | None, limit: int) -> list[str]:
    if last is None:
        return list((await session.scalars(_REPOSITORIES, {"limit": limit})).all())
    return list((await session.scalars(_REPOSITORIES_AFTER, {"limit": limit, "last": last})).all())


# blobs


async def add_blob(session: Writer, digest: str, size: int) -> None:
    await _insert_ignore(session, Blob, [{"digest": digest, "size": size, "created_at": utcnow()}])


async def link_blob(session: Writer, repo_id: int, digest: str) -> None:
    await _insert_ignore(
        session, RepositoryBlob, [{"repository_id": repo_id, "blob_digest": digest, "created_at": utcnow()}]
    )


async def unlink_blob(session: Writer, repo_id: int, digest: str) -> bool:
    result = await session.execute(
        delete(RepositoryBlob).where(RepositoryBlob.repository_id == repo_id, RepositoryBlob.blob_digest == digest)
    )
    return bool(result.rowcount)


_LINKED_BLOB_SIZE = plain(
    select(Blob.size)
    .join(RepositoryBlob, RepositoryBlob.blob_digest == Blob.digest)
    .join(Repository, Repository.id == RepositoryBlob.repository_id)
    .where(Repository.name == bindparam("repo"), Blob.digest == bindparam("digest"))
)


async def linked_blob_size(session: Reader, repo_name: str, digest: str) -> int | None:
    found: int | None = await session.scalar(_LINKED_BLOB_SIZE, {"repo": repo_name, "digest": digest})
    return found


async def linked_anywhere_size(session: Reader, digest: str, repo_names: Collection[str] | None) -> int | None:
    """The size of a blob one of ``repo_names`` (None: any repository) links, or None (a mount's source)."""
    query = (
        select(Blob.size)
        .join(RepositoryBlob, RepositoryBlob.blob_digest == Blob.digest)
        .where(Blob.digest == digest)
        .limit(1)
    )
    if repo_names is not None:
        names = select(Repository.id).where(Repository.name.in_(sorted(repo_names)))
        query = query.where(RepositoryBlob.repository_id.in_(names))
    found: int | None = await session.scalar(query)
    return found


_LINKED_BLOBS = select(RepositoryBlob.blob_digest).where(
    RepositoryBlob.repository_id == bindparam("repo_id"),
    RepositoryBlob.blob_digest.in_(bindparam("digests", expanding=True)),
)


async def linked_blobs(session: Reader, repo_id: int, digests: Iterable[str]) -> set[str]:
    wanted = set(digests)
    if not wanted:
        return set()
    return set((await session.scalars(_LINKED_BLOBS, {"repo_id": repo_id, "digests": sorted(wanted)})).all())


# manifests


_MANIFEST_IDS = select(Manifest.digest, Manifest.id).where(
    Manifest.repository_id == bindparam("repo_id"), Manifest.digest.in_(bindparam("digests", expanding=True))
)
_MANIFEST_ID = plain(
    select(Manifest.id).where(Manifest.repository_id == bindparam("repo_id"), Manifest.digest == bindparam("digest"))
)


async def manifest_ids(session: Reader, repo_id: int, digests: Iterable[str]) -> dict[str, int]:
    wanted = set(digests)
    if not wanted:
        return {}
    rows = (await session.execute(_MANIFEST_IDS, {"repo_id": repo_id, "digests": sorted(wanted)})).all()
    return {row.digest: row.id for row in rows}


async def insert_manifest(
    session: Writer, values: dict[str, Any], blob_digests: Iterable[str], child_ids: Iterable[int]
) -> int:
    """Insert a manifest and its references; a manifest already stored under that digest is kept as it is."""
    key = {"repo_id": values["repository_id"], "digest": values["digest"]}
    existing: int | None = await session.scalar(_MANIFEST_ID, key)
    if existing is not None:
        return existing
    await _insert_ignore(session, Manifest, [{**values, "created_at": utcnow()}])
    manifest_id: int | None = await session.scalar(_MANIFEST_ID, key)
    assert manifest_id is not None
    await _insert_ignore(session, ManifestBlob, [{"manifest_id": manifest_id, "blob_digest": d} for d in blob_digests])
    await _insert_ignore(session, ManifestReference, [{"parent_id": manifest_id, "child_id": c} for c in child_ids])
    return manifest_id


_MANIFEST_COLUMNS = (Manifest.id, Manifest.digest, Manifest.media_type, Manifest.size, Manifest.payload)


_MANIFEST_BY_DIGEST = plain(
    select(*_MANIFEST_COLUMNS)
    .join(Repository, Repository.id == Manifest.repository_id)
    .where(Repository.name == bindparam("repo"), Manifest.digest == bindparam("digest"))
)
_MANIFEST_BY_TAG = plain(
    select(*_MANIFEST_COLUMNS)
    .join(Tag, Tag.manifest_id == Manifest.id)
    .join(Repository, Repository.id == Tag.repository_id)
    .where(Repository.name == bindparam("repo"), Tag.name == bindparam("tag"))
)


async def manifest_by_digest(session: Reader, repo_name: str, digest: str) -> Any:
    return (await session.execute(_MANIFEST_BY_DIGEST, {"repo": repo_name, "digest": digest})).first()


async def manifest_by_tag(session: Reader, repo_name: str, tag: str) -> Any:
    return (await session.execute(_MANIFEST_BY_TAG, {"repo": repo_name, "tag": tag})).first()


async def delete_manifest(session: Writer, repo_id: int, digest: str) -> bool:
    result = await session.execute(delete(Manifest).where(Manifest.repository_id == repo_id, Manifest.digest == digest))
    return bool(result.rowcount)


async def referrers(session: Reader, repo_name: str, subject: str, artifact_type: str | None) -> Sequence[Any]:
    query = (
        select(Manifest.digest, Manifest.media_type, Manifest.size, Manifest.artifact_type, Manifest.annotations)
        .join(Repository, Repository.id == Manifest.repository_id)
        .where(Repository.name == repo_name, Manifest.subject_digest == subject)
        .order_by(Manifest.digest)
    )
    if artifact_type is not None:
        query = query.where(Manifest.artifact_type == artifact_type)
    return (await session.execute(query)).all()


# tags


def _upsert(insert: Any) -> Any:
    changed = {"manifest_id": insert.excluded.manifest_id, "updated_at": insert.excluded.updated_at}
    return insert.on_conflict_do_update(index_elements=["repository_id", "name"], set_=changed)


async def upsert_tag(session: Writer, repo_id: int, tag: str, manifest_id: int) -> None:
    row = {"repository_id": repo_id, "name": tag, "manifest_id": manifest_id, "updated_at": utcnow()}
    await session.execute(_for_dialect(session, "upsert", Tag, _upsert), row)


async def delete_tag(session: Writer, repo_id: int, tag: str) -> bool:
    result = await session.execute(delete(Tag).where(Tag.repository_id == repo_id, Tag.name == tag))
    return bool(result.rowcount)


_TAGS = plain(
    select(Tag.name)
    .join(Repository, Repository.id == Tag.repository_id)
    .where(Repository.name == bindparam("repo"))
    .order_by(Tag.name)
    .limit(bindparam("limit"))
)
_TAGS_AFTER = _TAGS.where(Tag.name > bindparam("last"))


async def list_tags(session: Reader, repo_name: str, last: str | None, limit: int) -> list[str]:
    params = {"repo": repo_name, "limit": limit, "last": last}
    return list((await session.scalars(_TAGS if last is None else _TAGS_AFTER, params)).all())


# uploads


# The statements every push runs are built once too, with bind parameters (named unlike the columns they set).
_CREATE_UPLOAD = plain(insert(Upload))
_CLAIM_UPLOAD = plain(
    update(Upload)
    .where(
        Upload.id == bindparam("upload"),
        Upload.repository_name == bindparam("repo"),
        or_(Upload.lease.is_(None), Upload.leased_at < bindparam("stale_before")),
    )
    .values(lease=bindparam("token"), leased_at=bindparam("now"))
    .returning(Upload.size)
)
_OUR_LEASE = (Upload.id == bindparam("upload"), Upload.lease == bindparam("token"))
_RENEW_UPLOAD = plain(update(Upload).where(*_OUR_LEASE).values(leased_at=bindparam("now")))
_RELEASE_UPLOAD = plain(update(Upload).where(*_OUR_LEASE).values(lease=None))
_RELEASE_UPLOAD_AT = _RELEASE_UPLOAD.values(size=bindparam("new_size"), updated_at=bindparam("now"))
_DELETE_UPLOAD = plain(delete(Upload).where(Upload.id == bindparam("upload")))


async def create_upload(session: Writer, upload_id: str, repo_name: str) -> None:
    now = utcnow()
    values = {"id": upload_id, "repository_name": repo_name, "size": 0, "created_at": now, "updated_at": now}
    await session.execute(_CREATE_UPLOAD, values)


_UPLOAD_SIZE = plain(
    select(Upload.size).where(Upload.id == bindparam("id"), Upload.repository_name == bindparam("repo"))
)


async def upload_size(session: Reader, upload_id: str, repo_name: str) -> int | None:
    found: int | None = await session.scalar(_UPLOAD_SIZE, {"id": upload_id, "repo": repo_name})
    return found


async def claim_upload(
    session: Writer, upload_id: str, repo_name: str, token: str, stale_before: datetime
) -> int | None:
    """Take the session's lease when it is free or stale; its size, or None when another request holds it."""
    params = {"upload": upload_id, "repo": repo_name, "stale_before": stale_before, "token": token, "now": utcnow()}
    size: int | None = (await session.execute(_CLAIM_UPLOAD, params)).scalar_one_or_none()
    return size


async def renew_upload(session: Writer, upload_id: str, token: str) -> None:
    await session.execute(_RENEW_UPLOAD, {"upload": upload_id, "token": token, "now": utcnow()})


async def release_upload(session: Writer, upload_id: str, token: str, size: int | None = None) -> None:
    """Give the lease back, with the session's size when the request wrote to it (only while the lease is ours)."""
    if size is None:
        await session.execute(_RELEASE_UPLOAD, {"upload": upload_id, "token": token})
        return
    params = {"upload": upload_id, "token": token, "new_size": size, "now": utcnow()}
    await session.execute(_RELEASE_UPLOAD_AT, params)


async def delete_upload(session: Writer, upload_id: str) -> bool:
    result = await session.execute(_DELETE_UPLOAD, {"upload": upload_id})
    return bool(result.rowcount)


async def stale_uploads(session: Reader, updated_before: datetime) -> list[str]:
    query = select(Upload.id).where(Upload.updated_at < updated_before)
    return list((await session.scalars(query)).all())


async def delete_stale_uploads(session: Writer, updated_before: datetime) -> list[str]:
    """Forget the sessions untouched since ``updated_before``; their ids."""
    stale = await stale_uploads(session, updated_before)
    for upload_id in stale:
        await delete_upload(session, upload_id)
    return stale


async def publish_upload(session: Writer, upload_id: str, repo_name: str, digest: str, size: int) -> None:
    """A verified upload becomes the blob ``digest``, linked into ``repo_name``; its session ends."""
    repo_id = await ensure_repository(session, repo_name)
    await add_blob(session, digest, size)
    await link_blob(session, repo_id, digest)
    await delete_upload(session, upload_id)


async def known_uploads(session: Reader, upload_ids: Sequence[str]) -> set[str]:
    query = select(Upload.id).where(Upload.id.in_(upload_ids))
    return set((await session.scalars(query)).all())
