"""The registry's SQL: a few small async queries over ``registry.db.models``."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, delete, insert, or_, select, union, update

from registry.db import globs, reviews
from registry.db.dialect import for_dialect, insert_ignore
from registry.db.models import (
    blobs,
    manifest_blobs,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
    tags,
    uploads,
    utcnow,
)
from registry.db.sessions import Reader, Writer, chunked
from registry.names import NameSet

# repositories


_REPOSITORY_ID = select(repositories.c.id).where(repositories.c.name == bindparam("name"))
_REPOSITORY_ID_LOCKED = _REPOSITORY_ID.with_for_update()


async def repository_id(session: Reader, name: str, *, lock: bool = False) -> int | None:
    """With ``lock``, writers to one repository queue up on its row (PostgreSQL; SQLite writers are serial anyway),
    so a manifest's checks and its insert see the same links and manifests."""
    found: int | None = await session.scalar(_REPOSITORY_ID_LOCKED if lock else _REPOSITORY_ID, {"name": name})
    return found


async def ensure_repository(session: Writer, name: str) -> int:
    await insert_ignore(session, repositories, [{"name": name, "created_at": utcnow()}])
    repo_id = await repository_id(session, name, lock=True)
    assert repo_id is not None
    return repo_id


# The reads every pull makes are built once, with bind parameters: building a statement costs more than running it.
_REPOSITORIES = select(repositories.c.name).order_by(repositories.c.name).limit(bindparam("limit"))
_REPOSITORIES_AFTER = _REPOSITORIES.where(repositories.c.name > bindparam("last"))


async def list_repositories(session: Reader, last: str | None, limit: int, within: NameSet | None = None) -> list[str]:
    """Up to ``limit`` names after ``last``, in order; only those ``within`` a set (None: every one)."""
    branches = None if within is None else globs.conditions(repositories.c.name, within)
    if branches is None:
        if last is None:
            return list((await session.scalars(_REPOSITORIES, {"limit": limit})).all())
        return list((await session.scalars(_REPOSITORIES_AFTER, {"limit": limit, "last": last})).all())
    if not branches:
        return []
    return list((await session.scalars(_filtered_page(branches, last, limit))).all())


def _filtered_page(branches: list[ColumnElement[bool]], last: str | None, limit: int) -> Select[tuple[str]]:
    """One page of each branch (the explicit names, each glob), each walking the name index from ``last`` and
    stopping at ``limit``, merged in order: never more rows read than the branches' pages hold, however many
    repositories the caller may not see."""
    name = repositories.c.name
    pages = []
    for branch in branches:
        page = select(name).where(branch).order_by(name).limit(limit)
        pages.append(page if last is None else page.where(name > last))
    if len(pages) == 1:
        return pages[0]
    merged = union(*(select(page.subquery().c.name) for page in pages)).subquery()
    return select(merged.c.name).order_by(merged.c.name).limit(limit)


# blobs


async def add_blob(session: Writer, digest: str, size: int) -> None:
    await insert_ignore(session, blobs, [{"digest": digest, "size": size, "created_at": utcnow()}])


async def link_blob(session: Writer, repo_id: int, digest: str) -> None:
    await insert_ignore(
        session, repository_blobs, [{"repository_id": repo_id, "blob_digest": digest, "created_at": utcnow()}]
    )


async def unlink_blob(session: Writer, repo_id: int, digest: str) -> bool:
    result = await session.execute(
        delete(repository_blobs).where(
            repository_blobs.c.repository_id == repo_id, repository_blobs.c.blob_digest == digest
        )
    )
    return bool(result.rowcount)


_LINKED_BLOB_SIZE = (
    select(blobs.c.size)
    .join(repository_blobs, repository_blobs.c.blob_digest == blobs.c.digest)
    .join(repositories, repositories.c.id == repository_blobs.c.repository_id)
    .where(repositories.c.name == bindparam("repo"), blobs.c.digest == bindparam("digest"))
)


async def linked_blob_size(session: Reader, repo_name: str, digest: str) -> int | None:
    found: int | None = await session.scalar(_LINKED_BLOB_SIZE, {"repo": repo_name, "digest": digest})
    return found


async def linked_anywhere_size(session: Reader, digest: str, repo_names: Collection[str] | None) -> int | None:
    """The size of a blob one of ``repo_names`` (None: any repository) links, or None (a mount's source)."""
    query = (
        select(blobs.c.size)
        .join(repository_blobs, repository_blobs.c.blob_digest == blobs.c.digest)
        .where(blobs.c.digest == digest)
        .limit(1)
    )
    if repo_names is not None:
        names = select(repositories.c.id).where(repositories.c.name.in_(sorted(repo_names)))
        query = query.where(repository_blobs.c.repository_id.in_(names))
    found: int | None = await session.scalar(query)
    return found


_LINKED_BLOBS = select(repository_blobs.c.blob_digest).where(
    repository_blobs.c.repository_id == bindparam("repo_id"),
    repository_blobs.c.blob_digest.in_(bindparam("digests", expanding=True)),
)


async def linked_blobs(session: Reader, repo_id: int, digests: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunked(digests):  # a manifest under the size cap may name 35,000
        found.update((await session.scalars(_LINKED_BLOBS, {"repo_id": repo_id, "digests": chunk})).all())
    return found


# manifests


_MANIFEST_IDS = select(manifests.c.digest, manifests.c.id).where(
    manifests.c.repository_id == bindparam("repo_id"), manifests.c.digest.in_(bindparam("digests", expanding=True))
)
_MANIFEST_ID = select(manifests.c.id).where(
    manifests.c.repository_id == bindparam("repo_id"), manifests.c.digest == bindparam("digest")
)


async def manifest_ids(session: Reader, repo_id: int, digests: Iterable[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunked(digests):  # a manifest under the size cap may name 35,000
        rows = (await session.execute(_MANIFEST_IDS, {"repo_id": repo_id, "digests": chunk})).all()
        found.update((row.digest, row.id) for row in rows)
    return found


async def insert_manifest(
    session: Writer, values: dict[str, Any], blob_digests: Iterable[str], child_ids: Iterable[int]
) -> int:
    """Insert a manifest and its references; a manifest already stored under that digest is kept as it is."""
    key = {"repo_id": values["repository_id"], "digest": values["digest"]}
    existing: int | None = await session.scalar(_MANIFEST_ID, key)
    if existing is not None:
        return existing
    await insert_ignore(session, manifests, [{**values, "created_at": utcnow()}])
    manifest_id: int | None = await session.scalar(_MANIFEST_ID, key)
    assert manifest_id is not None
    await insert_ignore(session, manifest_blobs, [{"manifest_id": manifest_id, "blob_digest": d} for d in blob_digests])
    await insert_ignore(session, manifest_references, [{"parent_id": manifest_id, "child_id": c} for c in child_ids])
    return manifest_id


_MANIFEST_COLUMNS = (manifests.c.id, manifests.c.digest, manifests.c.media_type, manifests.c.size, manifests.c.payload)


_MANIFEST_BY_DIGEST = (
    select(*_MANIFEST_COLUMNS)
    .join(repositories, repositories.c.id == manifests.c.repository_id)
    .where(repositories.c.name == bindparam("repo"), manifests.c.digest == bindparam("digest"))
)
_MANIFEST_BY_TAG = (
    select(*_MANIFEST_COLUMNS)
    .join(tags, tags.c.manifest_id == manifests.c.id)
    .join(repositories, repositories.c.id == tags.c.repository_id)
    .where(repositories.c.name == bindparam("repo"), tags.c.name == bindparam("tag"))
)


async def manifest_by_digest(session: Reader, repo_name: str, digest: str) -> Any:
    return (await session.execute(_MANIFEST_BY_DIGEST, {"repo": repo_name, "digest": digest})).first()


async def manifest_by_tag(session: Reader, repo_name: str, tag: str) -> Any:
    return (await session.execute(_MANIFEST_BY_TAG, {"repo": repo_name, "tag": tag})).first()


async def referrers(session: Reader, repo_name: str, subject: str, artifact_type: str | None) -> Sequence[Any]:
    query = (
        select(
            manifests.c.digest,
            manifests.c.media_type,
            manifests.c.size,
            manifests.c.artifact_type,
            manifests.c.annotations,
        )
        .join(repositories, repositories.c.id == manifests.c.repository_id)
        .where(repositories.c.name == repo_name, manifests.c.subject_digest == subject)
        .order_by(manifests.c.digest)
    )
    if artifact_type is not None:
        query = query.where(manifests.c.artifact_type == artifact_type)
    return (await session.execute(query)).all()


# tags


def _upsert(insert: Any) -> Any:
    changed = {"manifest_id": insert.excluded.manifest_id, "updated_at": insert.excluded.updated_at}
    return insert.on_conflict_do_update(index_elements=["repository_id", "name"], set_=changed)


_TAGGED = select(tags.c.manifest_id).where(
    tags.c.repository_id == bindparam("repo_id"), tags.c.name == bindparam("tag")
)


async def upsert_tag(session: Writer, repo_id: int, tag: str, manifest_id: int) -> int | None:
    """Point ``tag`` at the manifest; the manifest it pointed at before, when it moved."""
    before: int | None = await session.scalar(_TAGGED, {"repo_id": repo_id, "tag": tag})
    row = {"repository_id": repo_id, "name": tag, "manifest_id": manifest_id, "updated_at": utcnow()}
    await session.execute(for_dialect(session, "upsert", tags, _upsert), row)  # a re-push counts as recent too
    return None if before == manifest_id else before


_DELETE_TAG = (
    delete(tags)
    .where(tags.c.repository_id == bindparam("repo_id"), tags.c.name == bindparam("tag"))
    .returning(tags.c.manifest_id)
)


async def delete_tag(session: Writer, repo_id: int, tag: str) -> int | None:
    """Delete the tag; the manifest it pointed at, or None when there was no such tag."""
    found: int | None = (await session.execute(_DELETE_TAG, {"repo_id": repo_id, "tag": tag})).scalar()
    return found


async def untag(session: Writer, repo_id: int, tag: str, event: str) -> bool:
    """Delete the tag and queue the manifest it named for review (the collector decides whether it goes, by the
    repository's policy): what ``DELETE /v2/<name>/manifests/<tag>`` and retention both do."""
    untagged = await delete_tag(session, repo_id, tag)
    if untagged is not None:
        await reviews.queue_manifests(session, [untagged], event)
    return untagged is not None


_TAGS_VERSION = select(repositories.c.id, repositories.c.tags_version).where(repositories.c.name == bindparam("name"))


async def tags_version(session: Reader, repo_name: str) -> tuple[int, int] | None:
    """The repository's id and the version of its tags (any change to them bumps it), or None when there is none."""
    row = (await session.execute(_TAGS_VERSION, {"name": repo_name})).first()
    return None if row is None else (row.id, row.tags_version)


_TAGS = (
    select(tags.c.name)
    .where(tags.c.repository_id == bindparam("repo_id"))
    .order_by(tags.c.name)
    .limit(bindparam("limit"))
)
_TAGS_AFTER = _TAGS.where(tags.c.name > bindparam("last"))


async def list_tags(session: Reader, repo_id: int, last: str | None, limit: int) -> list[str]:
    params = {"repo_id": repo_id, "limit": limit, "last": last}
    return list((await session.scalars(_TAGS if last is None else _TAGS_AFTER, params)).all())


# uploads


# The statements every push runs are built once too, with bind parameters (named unlike the columns they set).
_CREATE_UPLOAD = insert(uploads)
_CLAIM_UPLOAD = (
    update(uploads)
    .where(
        uploads.c.id == bindparam("upload"),
        uploads.c.repository_name == bindparam("repo"),
        or_(uploads.c.lease.is_(None), uploads.c.leased_at < bindparam("stale_before")),
    )
    .values(lease=bindparam("token"), leased_at=bindparam("now"))
    .returning(uploads.c.size, uploads.c.hash_state)
)
_OUR_LEASE = (uploads.c.id == bindparam("upload"), uploads.c.lease == bindparam("token"))
_RENEW_UPLOAD = update(uploads).where(*_OUR_LEASE).values(leased_at=bindparam("now"))
_RELEASE_UPLOAD = update(uploads).where(*_OUR_LEASE).values(lease=None)
_RELEASE_UPLOAD_AT = _RELEASE_UPLOAD.values(
    size=bindparam("new_size"), hash_state=bindparam("new_hash_state"), updated_at=bindparam("now")
)
_DELETE_UPLOAD = delete(uploads).where(uploads.c.id == bindparam("upload"))


async def create_upload(session: Writer, upload_id: str, repo_name: str, hash_state: bytes | None = None) -> None:
    now = utcnow()
    values = {"id": upload_id, "repository_name": repo_name, "size": 0, "created_at": now, "updated_at": now}
    values["hash_state"] = hash_state
    await session.execute(_CREATE_UPLOAD, values)


_UPLOAD_SIZE = select(uploads.c.size).where(
    uploads.c.id == bindparam("id"), uploads.c.repository_name == bindparam("repo")
)


async def upload_size(session: Reader, upload_id: str, repo_name: str) -> int | None:
    found: int | None = await session.scalar(_UPLOAD_SIZE, {"id": upload_id, "repo": repo_name})
    return found


async def claim_upload(
    session: Writer, upload_id: str, repo_name: str, token: str, stale_before: datetime
) -> tuple[int, bytes | None] | None:
    """Take the session's lease when it is free or stale; its size and saved hash state, or None when another
    request holds it."""
    params = {"upload": upload_id, "repo": repo_name, "stale_before": stale_before, "token": token, "now": utcnow()}
    row = (await session.execute(_CLAIM_UPLOAD, params)).first()
    return None if row is None else (row[0], None if row[1] is None else bytes(row[1]))


async def renew_upload(session: Writer, upload_id: str, token: str) -> None:
    await session.execute(_RENEW_UPLOAD, {"upload": upload_id, "token": token, "now": utcnow()})


async def release_upload(
    session: Writer, upload_id: str, token: str, size: int | None = None, hash_state: bytes | None = None
) -> None:
    """Give the lease back, with the session's size and the hash of its bytes (None: they must be hashed again)
    when the request wrote to it (only while the lease is ours)."""
    if size is None:
        await session.execute(_RELEASE_UPLOAD, {"upload": upload_id, "token": token})
        return
    params = {"upload": upload_id, "token": token, "new_size": size, "new_hash_state": hash_state, "now": utcnow()}
    await session.execute(_RELEASE_UPLOAD_AT, params)


async def delete_upload(session: Writer, upload_id: str) -> bool:
    result = await session.execute(_DELETE_UPLOAD, {"upload": upload_id})
    return bool(result.rowcount)


async def stale_uploads(session: Reader, updated_before: datetime) -> list[str]:
    query = select(uploads.c.id).where(uploads.c.updated_at < updated_before)
    return list((await session.scalars(query)).all())


async def delete_stale_uploads(session: Writer, updated_before: datetime) -> list[str]:
    """Forget the sessions untouched since ``updated_before``; the ids this transaction deleted. Rows another
    worker or replica is deleting are skipped, so each stale session is purged (its data included) exactly once."""
    stale = select(uploads.c.id).where(uploads.c.updated_at < updated_before).with_for_update(skip_locked=True)
    deleted = delete(uploads).where(uploads.c.id.in_(stale.scalar_subquery())).returning(uploads.c.id)
    return sorted((await session.execute(deleted)).scalars().all())


_BLOB_ROW_LOCKED = select(blobs.c.digest).where(blobs.c.digest == bindparam("digest")).with_for_update()


async def publish_upload(
    session: Writer, upload_id: str, repo_name: str, digest: str, review_after: datetime, now: datetime
) -> bool:
    """A verified upload, whose blob row the upload claimed, is linked into ``repo_name`` and queued for review
    (collected then unless a manifest names it); its session ends. False when the blob's row is gone."""
    repo_id = await ensure_repository(session, repo_name)
    if not await session.scalar(_BLOB_ROW_LOCKED, {"digest": digest}):
        return False
    await link_blob(session, repo_id, digest)
    await delete_upload(session, upload_id)
    await reviews.queue_blobs(session, [digest], "uploaded", review_after, now)
    return True


async def known_uploads(session: Reader, upload_ids: Sequence[str]) -> set[str]:
    query = select(uploads.c.id).where(uploads.c.id.in_(upload_ids))
    return set((await session.scalars(query)).all())
