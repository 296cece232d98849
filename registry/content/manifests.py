"""Manifests and tags over SQL: a manifest is accepted only when everything it names is already in the repository,
and it is stored under the digest of the exact bytes received."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from registry.config import GcConfig
from registry.content.blobs import BlobStore
from registry.content.validation import IndexValidation
from registry.db import late_references, queries, reviews
from registry.db.engine import Database
from registry.db.models import utcnow
from registry.db.sessions import Writer
from registry.digests import Digest, looks_like_digest
from registry.errors import ErrorCode
from registry.events.sink import EventSink, disabled
from registry.gc import immutable
from registry.gc.policies import Policies
from registry.manifests import Descriptor, ParsedManifest, parse_manifest
from registry.names import check_tag, is_valid_tag

EMPTY_JSON = b"{}"
EMPTY_DIGEST = str(Digest.of(EMPTY_JSON))
# spec.md "Pushing Manifests": a registry taking ``?tag=`` parameters SHOULD take at least 10, MAY answer 414 past
# its limit
MAX_TAG_PARAMS = 100
# layers a registry is not required to hold (they carry ``urls`` to fetch them from elsewhere)
NON_DISTRIBUTABLE_PREFIXES = (
    "application/vnd.oci.image.layer.nondistributable.",
    "application/vnd.docker.image.rootfs.foreign.",
)


@dataclass(frozen=True)
class StoredManifest:
    id: int
    digest: str
    media_type: str
    size: int
    payload: bytes


class ManifestStore:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        gc: GcConfig | None = None,
        policies: Policies | None = None,
        events: EventSink | None = None,
        validation: IndexValidation | None = None,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.gc = gc or GcConfig()
        self.policies = policies or Policies()  # immutable tags: checked under the repository's lock, as tags change
        self.events = events or disabled()
        self.validation = validation or IndexValidation()  # which children an index needs pushed before it

    async def put(
        self, repo: str, reference: str, body: bytes, content_type: str | None, tags: Sequence[str] = ()
    ) -> tuple[str, ParsedManifest]:
        """Store a manifest and point ``tags`` at it (with ``reference`` when that is a tag), all in one transaction;
        the digest it is stored under, and its parse. ``tags`` come checked from ``tag_params``."""
        parsed = parse_manifest(body, content_type)
        digest, tag = _resolve_reference(reference, body, parsed)
        names = list(dict.fromkeys([tag, *tags] if tag is not None else tags))
        uses_empty = any(d.digest == EMPTY_DIGEST and d.size == len(EMPTY_JSON) for d in parsed.blob_references)
        if uses_empty:  # clients may name the empty JSON without uploading it: its bytes are known
            await self.blobs.put_small(EMPTY_JSON)
        pushed = self.events.manifest_pushed(repo, parsed, digest, names)

        async def store(session: Writer) -> None:  # nothing of a refused manifest stays: the transaction rolls back
            repo_id = await queries.ensure_repository(session, repo)
            for name in names:
                await immutable.check_tag_write(session, self.policies, repo, repo_id, name, digest)
            if uses_empty:
                await queries.add_blob(session, EMPTY_DIGEST, len(EMPTY_JSON))
                await queries.link_blob(session, repo_id, EMPTY_DIGEST)
            blob_digests = await _check_blobs(session, repo_id, parsed)
            child_ids = await _check_children(session, repo_id, parsed, self.validation)
            manifest_id = await queries.insert_manifest(
                session, manifest_row(repo_id, digest, body, parsed), blob_digests, child_ids
            )
            if self.validation.sparse:  # a child of an index pushed without it: now the index's reference
                parents = await late_references.indexes_naming(session, repo_id, digest)
                await late_references.add_parents(session, parents, manifest_id)
            if not names:  # pushed untagged: the collector looks at it when the repository's policy says
                await reviews.queue_manifests(session, [manifest_id], "pushed_untagged")
            moved = [
                m for name in names if (m := await queries.upsert_tag(session, repo_id, name, manifest_id)) is not None
            ]
            if moved:  # what the tags pointed at before: the collector reviews it
                await reviews.queue_manifests(session, moved, "tag_moved")
            await self.events.record(session, pushed)

        await self.db.write(store)
        return digest, parsed

    async def get(self, repo: str, reference: str) -> StoredManifest:
        async with self.db.read() as session:
            if looks_like_digest(reference):
                row = await queries.manifest_by_digest(session, repo, str(Digest.parse(reference)))
            elif is_valid_tag(reference):
                row = await queries.manifest_by_tag(session, repo, reference)
            else:
                row = None  # no such tag can exist: the conformance suite expects 404 MANIFEST_UNKNOWN, not 400
        if row is None:
            raise ErrorCode.MANIFEST_UNKNOWN.error({"reference": reference})
        return StoredManifest(row.id, row.digest, row.media_type, row.size, row.payload)

    def pulled(self, repo: str, reference: str, manifest: StoredManifest) -> None:
        """Report a manifest served (a GET, not a HEAD): buffered, never waited for."""
        self.events.pulled(
            "manifest", repo, manifest.digest, manifest.media_type, manifest.size, reference, manifest.payload
        )

    async def delete(self, repo: str, reference: str) -> None:
        is_digest = looks_like_digest(reference)
        target = str(Digest.parse(reference)) if is_digest else check_tag(reference)
        deleted = self.events.deleted(repo, digest=target) if is_digest else self.events.deleted(repo, tag=target)

        async def delete(session: Writer) -> bool:
            repo_id = await queries.repository_id(session, repo, lock=True)
            if repo_id is None:
                return False
            check = immutable.check_manifest_delete if is_digest else immutable.check_tag_delete
            await check(session, self.policies, repo, repo_id, target)
            if is_digest:
                done = await self._delete_manifest(session, repo_id, target)
            else:
                done = await queries.untag(session, repo_id, target, "tag_deleted")
            if done:
                await self.events.record(session, deleted)
            return done

        if not await self.db.write(delete):
            raise ErrorCode.MANIFEST_UNKNOWN.error({"reference": reference})

    async def _delete_manifest(self, session: Writer, repo_id: int, digest: str) -> bool:
        """Delete by digest (with its tags); what it held is queued, its blobs reviewed after the delay."""
        manifest_id = (await queries.manifest_ids(session, repo_id, [digest])).get(digest)
        if manifest_id is None:
            return False
        later = utcnow() + timedelta(seconds=self.gc.delay)
        await reviews.delete_manifest(
            session, manifest_id, repo_id, digest, event="manifest_deleted", blobs_after=later
        )
        return True

    async def referrers(self, repo: str, subject: Digest, artifact_type: str | None) -> list[dict[str, Any]]:
        async with self.db.read() as session:
            rows = await queries.referrers(session, repo, str(subject), artifact_type)
        return [_descriptor(row) for row in rows]


def tag_params(reference: str, values: Sequence[str]) -> list[str]:
    """The ``?tag=`` parameters of a manifest push (spec.md "Pushing Manifests", end-7b), each checked as a tag and
    without repeats: only with a push by digest, and at most MAX_TAG_PARAMS (else 414)."""
    if not values:
        return []
    if not looks_like_digest(reference):
        raise ErrorCode.TAG_INVALID.error({"reason": "tag parameters need a push by digest", "reference": reference})
    tags = list(dict.fromkeys(values))
    if len(tags) > MAX_TAG_PARAMS:
        raise ErrorCode.TAG_INVALID.error(
            {"limit": MAX_TAG_PARAMS, "tags": len(tags)}, status=414, message="too many tag parameters"
        )
    return [check_tag(tag) for tag in tags]


def _resolve_reference(reference: str, body: bytes, parsed: ParsedManifest) -> tuple[str, str | None]:
    if not looks_like_digest(reference):
        return parsed.digest, check_tag(reference)
    expected = Digest.parse(reference)
    actual = str(Digest.of(body, expected.algorithm))
    if actual != str(expected):
        raise ErrorCode.DIGEST_INVALID.error({"expected": str(expected), "actual": actual})
    return actual, None


def required(descriptor: Descriptor) -> bool:
    """Whether the registry must hold the blob (a non-distributable layer is fetched from its ``urls``)."""
    return not descriptor.media_type.startswith(NON_DISTRIBUTABLE_PREFIXES)


async def _check_blobs(session: Any, repo_id: int, parsed: ParsedManifest) -> set[str]:
    wanted = {d.digest for d in parsed.blob_references if required(d)}
    missing = wanted - await queries.linked_blobs(session, repo_id, wanted)
    if missing:
        raise ErrorCode.MANIFEST_BLOB_UNKNOWN.error({"digest": sorted(missing)[0]})
    return wanted


async def _check_children(session: Any, repo_id: int, parsed: ParsedManifest, validation: IndexValidation) -> list[int]:
    wanted = {d.digest for d in parsed.manifests}
    found = await queries.manifest_ids(session, repo_id, wanted)
    missing = {d.digest for d in parsed.manifests if validation.requires(d)} - found.keys()
    if missing:
        raise ErrorCode.MANIFEST_BLOB_UNKNOWN.error({"digest": sorted(missing)[0]})
    return list(found.values())


def manifest_row(repo_id: int, digest: str, body: bytes, parsed: ParsedManifest) -> dict[str, Any]:
    """The ``manifests`` row of a manifest, as a push and an import store it."""
    return {
        "repository_id": repo_id,
        "digest": digest,
        "media_type": parsed.media_type,
        "artifact_type": parsed.artifact_type,
        "subject_digest": parsed.subject.digest if parsed.subject else None,
        "annotations": json.dumps(parsed.annotations) if parsed.annotations else None,
        "size": len(body),
        "payload": body,
    }


def _descriptor(row: Any) -> dict[str, Any]:
    descriptor: dict[str, Any] = {"mediaType": row.media_type, "digest": row.digest, "size": row.size}
    if row.artifact_type:
        descriptor["artifactType"] = row.artifact_type
    if row.annotations:
        descriptor["annotations"] = json.loads(row.annotations)
    return descriptor
