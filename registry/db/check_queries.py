"""The SQL of ``registry check``: pages of what the database claims, and the repair that drops blob links."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, select

from registry.db.models import blobs, manifest_blobs, manifests, repositories, repository_blobs, tags
from registry.db.sessions import Reader, Writer, chunked

_BLOBS = select(blobs.c.digest, blobs.c.size).where(blobs.c.digest > bindparam("after"))
_BLOBS = _BLOBS.order_by(blobs.c.digest).limit(bindparam("limit"))
_MANIFESTS = (
    select(manifests.c.id, repositories.c.name, manifests.c.digest, manifests.c.payload)
    .join(repositories, repositories.c.id == manifests.c.repository_id)
    .where(manifests.c.id > bindparam("after"))
    .order_by(manifests.c.id)
    .limit(bindparam("limit"))
)
_STRAY_TAGS = (
    select(repositories.c.name, tags.c.name.label("tag"))
    .join(repositories, repositories.c.id == tags.c.repository_id)
    .join(manifests, manifests.c.id == tags.c.manifest_id)
    .where(manifests.c.repository_id != tags.c.repository_id)
)
_NEEDING = (
    select(repositories.c.name, manifests.c.digest)
    .join(manifests, manifests.c.repository_id == repositories.c.id)
    .join(manifest_blobs, manifest_blobs.c.manifest_id == manifests.c.id)
    .where(manifest_blobs.c.blob_digest.in_(bindparam("digests", expanding=True)))
    .distinct()
)
_KNOWN = select(blobs.c.digest).where(blobs.c.digest.in_(bindparam("digests", expanding=True)))


async def blobs_page(session: Reader, after: str, limit: int) -> Sequence[Any]:
    return (await session.execute(_BLOBS, {"after": after, "limit": limit})).all()


async def manifests_page(session: Reader, after: int, limit: int) -> Sequence[Any]:
    return (await session.execute(_MANIFESTS, {"after": after, "limit": limit})).all()


async def stray_tags(session: Reader) -> list[str]:
    """Tags that name a manifest of another repository (never written so: a sign of a damaged database)."""
    return [f"{row.name}:{row.tag}" for row in (await session.execute(_STRAY_TAGS)).all()]


async def known_blobs(session: Reader, digests: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunked(digests):
        found.update((await session.scalars(_KNOWN, {"digests": chunk})).all())
    return found


async def manifests_needing(session: Reader, digests: Iterable[str]) -> list[str]:
    """``repository@digest`` of every manifest that names one of these blobs."""
    found: list[str] = []
    for chunk in chunked(digests):
        found += [f"{row.name}@{row.digest}" for row in (await session.execute(_NEEDING, {"digests": chunk})).all()]
    return sorted(found)


async def drop_links(session: Writer, digests: Sequence[str]) -> int:
    """Unlink these blobs from every repository (a HEAD then answers 404 and a push uploads them again)."""
    dropped = 0
    for chunk in chunked(digests):
        result = await session.execute(delete(repository_blobs).where(repository_blobs.c.blob_digest.in_(chunk)))
        dropped += int(getattr(result, "rowcount", 0) or 0)
    return dropped
