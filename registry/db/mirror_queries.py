"""The SQL of the pull-through cache (``registry.content.mirrored``): a mirrored manifest's references are recorded
as its parts arrive, in whatever order the client fetches them, so the collector sees what a cached tag holds."""

from __future__ import annotations

from sqlalchemy import select

from registry.db.models import manifest_blobs, manifest_references, manifests
from registry.db.queries import _insert_ignore
from registry.db.sessions import Writer


async def naming(session: Writer, repo_id: int, digest: str) -> list[int]:
    """The repository's manifests whose bytes name ``digest`` (a config, a layer or a child manifest)."""
    rows = await session.execute(
        select(manifests.c.id, manifests.c.payload).where(
            manifests.c.repository_id == repo_id, manifests.c.digest != digest
        )
    )
    needle = digest.encode()
    return [row.id for row in rows if needle in bytes(row.payload)]


async def add_blob_references(session: Writer, manifest_ids: list[int], digest: str) -> None:
    await _insert_ignore(session, manifest_blobs, [{"manifest_id": m, "blob_digest": digest} for m in manifest_ids])


async def add_parents(session: Writer, parent_ids: list[int], child_id: int) -> None:
    rows = [{"parent_id": parent, "child_id": child_id} for parent in parent_ids]
    await _insert_ignore(session, manifest_references, rows)
