"""The SQL of ``registry import``: batched inserts that ignore what is already there, so that an import run again
(after a crash, or to catch up with pushes made meanwhile) converges on the same rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from registry.db import queries
from registry.db.dialect import for_dialect, insert_ignore
from registry.db.models import blobs, manifest_references, manifests, repository_blobs, tags, utcnow
from registry.db.sessions import Reader, Writer, chunked
from registry.manifests import INDEX_TYPES

_BLOB_SIZES = select(blobs.c.digest, blobs.c.size).where(blobs.c.digest.in_(bindparam("digests", expanding=True)))


async def blob_sizes(session: Reader, digests: Iterable[str]) -> dict[str, int]:
    """The sizes of the blobs among ``digests`` that have a row."""
    found: dict[str, int] = {}
    for chunk in chunked(digests):
        rows = (await session.execute(_BLOB_SIZES, {"digests": chunk})).all()
        found.update((row.digest, row.size) for row in rows)
    return found


async def link_blobs(session: Writer, repo_id: int, sizes: dict[str, int]) -> None:
    """Rows for these blobs (digest: size) and their links into the repository."""
    now = utcnow()
    await insert_ignore(session, blobs, [{"digest": d, "size": s, "created_at": now} for d, s in sizes.items()])
    links = [{"repository_id": repo_id, "blob_digest": d, "created_at": now} for d in sizes]
    await insert_ignore(session, repository_blobs, links)


_INDEXES = (
    select(manifests.c.id, manifests.c.digest, manifests.c.payload)
    .where(
        manifests.c.repository_id == bindparam("repo_id"),
        manifests.c.media_type.in_(sorted(INDEX_TYPES)),
        manifests.c.id > bindparam("after"),
    )
    .order_by(manifests.c.id)
    .limit(bindparam("limit"))
)


async def indexes(session: Reader, repo_id: int, after: int, limit: int) -> Sequence[Any]:
    """A page of the repository's indexes (id, digest, payload) with ids above ``after``."""
    return (await session.execute(_INDEXES, {"repo_id": repo_id, "after": after, "limit": limit})).all()


async def add_references(session: Writer, parent_id: int, child_ids: Iterable[int]) -> None:
    await insert_ignore(session, manifest_references, [{"parent_id": parent_id, "child_id": c} for c in child_ids])


def _newer_wins(insert: Any) -> Any:
    """A tag moves only to a newer push: an import run again never undoes a push made to this registry since."""
    changed = {"manifest_id": insert.excluded.manifest_id, "updated_at": insert.excluded.updated_at}
    return insert.on_conflict_do_update(
        index_elements=["repository_id", "name"], set_=changed, where=tags.c.updated_at < insert.excluded.updated_at
    )


async def upsert_tags(session: Writer, repo_id: int, found: Sequence[tuple[str, int, datetime]]) -> None:
    """Point each (tag, manifest id, pushed at), unless the tag already names what a later push made it name."""
    if found:
        rows = [{"repository_id": repo_id, "name": t, "manifest_id": m, "updated_at": at} for t, m, at in found]
        await session.execute(for_dialect(session, "import_tags", tags, _newer_wins), rows)


manifest_ids = queries.manifest_ids
insert_manifest = queries.insert_manifest
ensure_repository = queries.ensure_repository
