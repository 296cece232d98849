"""References recorded as the parts arrive, for a manifest stored before what it names: a mirrored manifest
(``registry.content.mirrored``: the client fetches its blobs and children next, in any order) and a sparse index
(``registry.content.validation``: its children are pushed later, or never). So the collector sees what they hold."""

from __future__ import annotations

from sqlalchemy import select

from registry.db.dialect import insert_ignore
from registry.db.models import manifest_blobs, manifest_references, manifests
from registry.db.sessions import Writer
from registry.manifests import INDEX_TYPES, parse_manifest


async def naming(session: Writer, repo_id: int, digest: str) -> list[int]:
    """The repository's manifests whose bytes name ``digest`` (a config, a layer or a child manifest)."""
    rows = await session.execute(
        select(manifests.c.id, manifests.c.payload).where(
            manifests.c.repository_id == repo_id, manifests.c.digest != digest
        )
    )
    needle = digest.encode()
    return [row.id for row in rows if needle in bytes(row.payload)]


async def indexes_naming(session: Writer, repo_id: int, digest: str) -> list[int]:
    """The repository's indexes listing ``digest`` among their children (not as a subject)."""
    rows = await session.execute(
        select(manifests.c.id, manifests.c.payload, manifests.c.media_type).where(
            manifests.c.repository_id == repo_id,
            manifests.c.media_type.in_(INDEX_TYPES),
            manifests.c.digest != digest,
        )
    )
    needle = digest.encode()
    return [row.id for row in rows if needle in bytes(row.payload) and _lists(row.payload, row.media_type, digest)]


def _lists(payload: bytes, media_type: str, digest: str) -> bool:
    return any(child.digest == digest for child in parse_manifest(bytes(payload), media_type).manifests)


async def add_blob_references(session: Writer, manifest_ids: list[int], digest: str) -> None:
    await insert_ignore(session, manifest_blobs, [{"manifest_id": m, "blob_digest": digest} for m in manifest_ids])


async def add_parents(session: Writer, parent_ids: list[int], child_id: int) -> None:
    rows = [{"parent_id": parent, "child_id": child_id} for parent in parent_ids]
    await insert_ignore(session, manifest_references, rows)
