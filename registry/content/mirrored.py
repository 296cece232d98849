"""Content a pull-through cache brings from its upstream (``registry.proxy``), kept like pushed content but without
a push's checks: a mirrored manifest is stored before its blobs and children (the client fetches them next), and each
part, when it arrives, is recorded as the manifest's reference (``registry.db.late_references``), so the collector
keeps what a cached tag holds.

A mirrored blob takes the upload path (``UploadStore.push``): staged, verified against its digest, then published."""

from __future__ import annotations

from registry.content.blobs import BlobStore
from registry.content.manifests import StoredManifest, manifest_row
from registry.db import late_references, queries, reviews
from registry.db.engine import Database
from registry.db.sessions import Writer
from registry.digests import Digest
from registry.errors import ErrorCode, RegistryError
from registry.manifests import ParsedManifest, parse_manifest


class MirroredContent:
    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs

    async def store_manifest(self, repo: str, body: bytes, media_type: str | None, tag: str | None) -> StoredManifest:
        """Keep a manifest the upstream sent (and point ``tag`` at it); its digest is that of the bytes received."""
        parsed = _parse(body, media_type)
        digest = str(Digest.of(body))

        async def store(session: Writer) -> int:
            repo_id = await queries.ensure_repository(session, repo)
            wanted = {d.digest for d in parsed.blob_references}
            blobs = await queries.linked_blobs(session, repo_id, wanted)
            children = await queries.manifest_ids(session, repo_id, {d.digest for d in parsed.manifests})
            row = manifest_row(repo_id, digest, body, parsed)
            manifest_id = await queries.insert_manifest(session, row, blobs, children.values())
            parents = await late_references.indexes_naming(session, repo_id, digest)
            await late_references.add_parents(session, parents, manifest_id)
            if tag is not None:
                moved = await queries.upsert_tag(session, repo_id, tag, manifest_id)
                if moved is not None:  # what the tag pointed at before: the collector reviews it
                    await reviews.queue_manifests(session, [moved], "tag_moved")
            return manifest_id

        manifest_id = await self.db.write(store)
        return StoredManifest(manifest_id, digest, parsed.media_type, len(body), body)

    async def blob_arrived(self, repo: str, digest: Digest) -> None:
        """Record a blob just published into ``repo`` as a reference of the repository's manifests naming it."""

        async def record(session: Writer) -> None:
            repo_id = await queries.repository_id(session, repo, lock=True)
            if repo_id is not None:
                naming = await late_references.naming(session, repo_id, str(digest))
                await late_references.add_blob_references(session, naming, str(digest))

        await self.db.write(record)


def _parse(body: bytes, media_type: str | None) -> ParsedManifest:
    try:
        return parse_manifest(body, media_type)
    except RegistryError as exc:  # the upstream's manifest, not the client's: a bad gateway
        detail = {"reason": "the upstream sent a manifest we cannot read", "error": exc.detail}
        raise ErrorCode.UNAVAILABLE.error(detail, status=502, message="bad answer from the upstream registry") from None
