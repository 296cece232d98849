"""The collector's SQL: review queues, blob leases, and the re-checks that decide inside the deleting transaction.

Lock order, the same everywhere so that no two transactions wait on each other in a cycle (PostgreSQL; SQLite has
one writer): repository rows, then blob rows, then review rows. A push takes its repository's row, then (foreign
keys) its blobs'; the collector claims its reviews in a transaction of their own, then takes the repositories that
link a blob, the blob, and touches its review row last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)

from registry.db.dialect import dialect_insert, for_dialect
from registry.db.models import (
    aware,
    blobs,
    gc_blob_deletions,
    gc_blob_reviews,
    gc_manifest_reviews,
    manifest_blobs,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
    tags,
    utcnow,
)
from registry.db.sessions import Reader, Writer, chunked

# queueing


def _later(old: Any, new: Any) -> Any:
    """The later of two timestamps, either possibly NULL, in SQL both dialects speak."""
    return case((old.is_(None), new), (new > old, new), else_=old)


def _earlier(old: Any, new: Any) -> Any:
    return case((new < old, new), else_=old)


def _upsert_review(table: Table, key: str) -> Any:
    def build(insert: Any) -> Any:
        excluded = insert.excluded
        changed = {
            # the earliest asked for: a review re-checks everything, and postpones itself when that is too early
            "review_after": _earlier(table.c.review_after, excluded.review_after),
            "queued_at": excluded.queued_at,
            "event": excluded.event,
            "claimed_by": None,  # a claim in progress no longer ends this review: the new dereference gets its own
        }
        return insert.on_conflict_do_update(index_elements=[key], set_=changed)

    return build


async def queue_blobs(
    session: Writer, digests: Iterable[str], event: str, review_after: datetime, now: datetime
) -> None:
    rows = [{"digest": d, "review_after": review_after, "queued_at": now, "event": event} for d in sorted(set(digests))]
    if rows:
        statement = for_dialect(session, "review", gc_blob_reviews, _upsert_review(gc_blob_reviews, "digest"))
        await session.execute(statement, rows[0] if len(rows) == 1 else rows)


async def queue_manifests(
    session: Writer, manifest_ids: Iterable[int], event: str, review_after: datetime | None = None
) -> None:
    """Queue manifests for review, due at once unless ``review_after``: a manifest's review applies its repository's
    untagged delay itself, counted from now (``queued_at``)."""
    now = utcnow()
    row = {"review_after": review_after or now, "queued_at": now, "event": event}
    rows = [{"manifest_id": m, **row} for m in sorted(set(manifest_ids))]
    if rows:
        build = _upsert_review(gc_manifest_reviews, "manifest_id")
        statement = for_dialect(session, "review", gc_manifest_reviews, build)
        await session.execute(statement, rows[0] if len(rows) == 1 else rows)


# claiming: one short transaction takes due rows for ``until`` (other workers and replicas skip them meanwhile)


async def claim_blob_reviews(session: Writer, token: str, now: datetime, until: datetime, limit: int) -> list[str]:
    return await _claim(session, gc_blob_reviews, gc_blob_reviews.c.digest, token, now, until, limit)


async def claim_manifest_reviews(session: Writer, token: str, now: datetime, until: datetime, limit: int) -> list[int]:
    return await _claim(session, gc_manifest_reviews, gc_manifest_reviews.c.manifest_id, token, now, until, limit)


async def _claim(
    session: Writer, table: Table, key: Any, token: str, now: datetime, until: datetime, limit: int
) -> list[Any]:
    """Up to ``limit`` due rows, oldest first, taken for ``until``; rows another worker holds are skipped."""
    due = select(key).where(table.c.review_after <= now).order_by(table.c.review_after).limit(limit)
    claim = (
        update(table)
        .where(key.in_(due.with_for_update(skip_locked=True).scalar_subquery()))
        .values(claimed_by=token, review_after=until)
        .returning(key)
    )
    return sorted((await session.execute(claim)).scalars().all())


async def _end_review(session: Writer, table: Table, key: Any, token: str, postpone_to: datetime | None) -> None:
    """Delete the claimed row, or hand it back due at ``postpone_to``; a row queued again meanwhile is left alone."""
    ours = and_(key, table.c.claimed_by == token)
    if postpone_to is None:
        await session.execute(delete(table).where(ours))
    else:
        await session.execute(update(table).where(ours).values(review_after=postpone_to, claimed_by=None))


# blobs


@dataclass(frozen=True)
class BlobVerdict:
    deleted: bool = False
    size: int = 0
    links_removed: int = 0


# The statements every blob review runs, built once: on SQLite they then run as their SQL on the driver
# (``registry.db.sqlite_plain``), and a review costs the database's work, not SQLAlchemy's.
_DIGEST: BindParameter[str] = bindparam("blob")
_UNREFERENCED = and_(
    repository_blobs.c.blob_digest == _DIGEST,
    ~exists().where(
        manifest_blobs.c.blob_digest == _DIGEST,
        manifests.c.id == manifest_blobs.c.manifest_id,
        manifests.c.repository_id == repository_blobs.c.repository_id,
    ),
)
_LINKING = select(repository_blobs.c.repository_id).where(repository_blobs.c.blob_digest == _DIGEST)
_BLOB_ROW = select(blobs.c.size, blobs.c.protected_until).where(blobs.c.digest == _DIGEST).with_for_update()
_DROP_LINKS = delete(repository_blobs).where(_UNREFERENCED, repository_blobs.c.created_at <= bindparam("cutoff"))
_YOUNGEST_LOOSE_LINK = select(func.min(repository_blobs.c.created_at)).where(_UNREFERENCED)
_STILL_REFERENCED = select(
    exists().where(repository_blobs.c.blob_digest == _DIGEST) | exists().where(manifest_blobs.c.blob_digest == _DIGEST)
)
_DELETE_BLOB = delete(blobs).where(blobs.c.digest == _DIGEST)
_TOMBSTONE = insert(gc_blob_deletions).values(digest=_DIGEST, started_at=bindparam("started"))
_OUR_BLOB_REVIEW = and_(gc_blob_reviews.c.digest == _DIGEST, gc_blob_reviews.c.claimed_by == bindparam("token"))
_END_BLOB_REVIEW = delete(gc_blob_reviews).where(_OUR_BLOB_REVIEW)
_POSTPONE_BLOB_REVIEW = (
    update(gc_blob_reviews).where(_OUR_BLOB_REVIEW).values(review_after=bindparam("postpone_to"), claimed_by=None)
)


async def review_blob(
    session: Writer, digest: str, token: str, now: datetime, link_cutoff: datetime, *, leases: bool = True
) -> BlobVerdict:
    """Inside one write transaction: drop the blob's links that no manifest of their repository names and that are
    older than ``link_cutoff``, then delete the blob's row (leaving a tombstone) when nothing references it and no
    lease (``leases=False``: an offline collection, with no server to hold one) protects it. The caller deletes the
    bytes after the commit, then the tombstone."""
    key = {"blob": digest}
    repo_ids = list((await session.scalars(_LINKING, key)).all())
    if repo_ids and session.get_bind().dialect.name == "postgresql":  # SQLite's one writer needs no row locks
        lock = select(repositories.c.id).where(repositories.c.id.in_(repo_ids)).order_by(repositories.c.id)
        await session.execute(lock.with_for_update())
    row = (await session.execute(_BLOB_ROW, key)).first()
    if row is None:
        await _end_blob_review(session, digest, token, None)
        return BlobVerdict()
    protected_until = None if row[1] is None else aware(row[1])
    if leases and protected_until is not None and protected_until > now:
        await _end_blob_review(session, digest, token, protected_until)
        return BlobVerdict()
    removed = (await session.execute(_DROP_LINKS, {**key, "cutoff": link_cutoff})).rowcount
    young = await session.scalar(_YOUNGEST_LOOSE_LINK, key)
    if await session.scalar(_STILL_REFERENCED, key):
        postpone = None if young is None else aware(young) + (now - link_cutoff)
        await _end_blob_review(session, digest, token, postpone)
        return BlobVerdict(links_removed=removed)
    await session.execute(_DELETE_BLOB, key)
    await session.execute(_TOMBSTONE, {**key, "started": now})
    await _end_blob_review(session, digest, token, None)
    return BlobVerdict(True, int(row[0]), removed)


async def _end_blob_review(session: Writer, digest: str, token: str, postpone_to: datetime | None) -> None:
    """Delete the claimed review, or hand it back due at ``postpone_to`` (one queued again meanwhile is left)."""
    params = {"blob": digest, "token": token}
    if postpone_to is None:
        await session.execute(_END_BLOB_REVIEW, params)
    else:
        await session.execute(_POSTPONE_BLOB_REVIEW, {**params, "postpone_to": postpone_to})


# leases and tombstones


class BlobBeingDeleted(Exception):
    """The blob's bytes are being deleted (a tombstone): nothing may rely on them until that ends."""

    def __init__(self, started_at: datetime) -> None:
        super().__init__(f"blob deletion in progress since {started_at.isoformat()}")
        self.started_at = started_at


async def claim_blob(session: Writer, digest: str, size: int, now: datetime, until: datetime) -> None:
    """The blob's row, made or renewed with a lease to ``until``, in the transaction that checks no deletion of its
    bytes is under way (raising BlobBeingDeleted rolls the claim back)."""
    row = {"digest": digest, "size": size, "created_at": now, "protected_until": until}
    await session.execute(for_dialect(session, "lease", blobs, _upsert_lease), row)
    started = await session.scalar(_TOMBSTONE_STARTED, {"blob": digest})
    if started is not None:
        raise BlobBeingDeleted(aware(started))


def _upsert_lease(insert: Any) -> Any:
    later = _later(blobs.c.protected_until, insert.excluded.protected_until)
    return insert.on_conflict_do_update(index_elements=["digest"], set_={"protected_until": later})


# built once, as the push and pull paths' other statements: uploads, mounts and HEADs run these
_TOMBSTONE_STARTED = select(gc_blob_deletions.c.started_at).where(gc_blob_deletions.c.digest == _DIGEST)
_RENEW_LEASE = (
    update(blobs)
    .where(blobs.c.digest == _DIGEST)
    .values(protected_until=_later(blobs.c.protected_until, bindparam("until", type_=blobs.c.protected_until.type)))
)
_LEASE_ENDING = select(blobs.c.digest).where(
    blobs.c.digest == _DIGEST, blobs.c.protected_until.is_(None) | (blobs.c.protected_until < bindparam("before"))
)


async def renew_lease(session: Writer, digest: str, until: datetime) -> bool:
    """Extend an existing blob's lease (a mount, a HEAD); False when the blob has no row (collected)."""
    return bool((await session.execute(_RENEW_LEASE, {"blob": digest, "until": until})).rowcount)


async def lease_needs_renewal(session: Reader, digest: str, before: datetime) -> bool:
    return await session.scalar(_LEASE_ENDING, {"blob": digest, "before": before}) is not None


async def stale_tombstones(session: Reader, started_before: datetime) -> list[str]:
    query = select(gc_blob_deletions.c.digest).where(gc_blob_deletions.c.started_at < started_before)
    return list((await session.scalars(query)).all())


async def end_tombstones(session: Writer, digests: Sequence[str]) -> None:
    for chunk in chunked(digests):
        await session.execute(delete(gc_blob_deletions).where(gc_blob_deletions.c.digest.in_(chunk)))


# manifests


@dataclass(frozen=True)
class ManifestVerdict:
    deleted: bool = False
    repository: str = ""
    digest: str = ""
    size: int = 0


async def review_manifest(
    session: Writer,
    manifest_id: int,
    token: str,
    now: datetime,
    untagged_after: Callable[[str], float | None],
    collect_referrers: Callable[[str], bool],
) -> ManifestVerdict:
    """Inside one write transaction: delete an untagged manifest that no index and no kept subject holds, once the
    repository's policy (``untagged_after(repo) -> seconds | None``) allows; queue what it referenced for review."""
    review = gc_manifest_reviews.c.manifest_id == manifest_id
    repo_id = await session.scalar(select(manifests.c.repository_id).where(manifests.c.id == manifest_id))
    if repo_id is None:
        return ManifestVerdict()  # gone, and its review with it
    await session.execute(select(repositories.c.id).where(repositories.c.id == repo_id).with_for_update())
    found = (
        await session.execute(
            select(manifests.c.digest, manifests.c.subject_digest, manifests.c.size, repositories.c.name)
            .join(repositories, repositories.c.id == manifests.c.repository_id)
            .where(manifests.c.id == manifest_id)
        )
    ).first()
    queued = await session.scalar(
        select(gc_manifest_reviews.c.queued_at).where(review, gc_manifest_reviews.c.claimed_by == token)
    )
    if found is None or queued is None:
        return ManifestVerdict()  # deleted meanwhile, or queued again (that review decides)
    after = untagged_after(found.name)
    if after is None or await _manifest_held(
        session, manifest_id, repo_id, found.subject_digest, collect_referrers(found.name)
    ):
        await _end_review(session, gc_manifest_reviews, review, token, None)
        return ManifestVerdict()
    due = aware(queued) + timedelta(seconds=after)
    if due > now:
        await _end_review(session, gc_manifest_reviews, review, token, due)
        return ManifestVerdict()
    await delete_manifest(session, manifest_id, repo_id, found.digest, event="collected", blobs_after=now)
    return ManifestVerdict(True, found.name, found.digest, int(found.size))


async def _manifest_held(
    session: Writer, manifest_id: int, repo_id: int, subject: str | None, referrers_go: bool
) -> bool:
    tagged = exists().where(tags.c.manifest_id == manifest_id)
    child = exists().where(manifest_references.c.child_id == manifest_id)
    held = tagged | child
    if subject is not None and not referrers_go:
        held = held | exists().where(manifests.c.repository_id == repo_id, manifests.c.digest == subject)
    return bool(await session.scalar(select(held)))


async def delete_manifest(
    session: Writer, manifest_id: int, repo_id: int, digest: str, *, event: str, blobs_after: datetime
) -> None:
    """Delete a manifest (its tags, references and review go with it) and queue what it held: its blobs at
    ``blobs_after``, its children and its referrers at once (their own rules decide). ``event``: deleted (by a
    client) or collected."""
    blob_rows = select(manifest_blobs.c.blob_digest).where(manifest_blobs.c.manifest_id == manifest_id)
    children = select(manifest_references.c.child_id).where(manifest_references.c.parent_id == manifest_id)
    referrers = select(manifests.c.id).where(manifests.c.repository_id == repo_id, manifests.c.subject_digest == digest)
    held_blobs = list((await session.scalars(blob_rows)).all())
    held = [m for query in (children, referrers) for m in (await session.scalars(query)).all() if m != manifest_id]
    await session.execute(delete(manifests).where(manifests.c.id == manifest_id))
    await queue_blobs(session, held_blobs, f"manifest_{event}", blobs_after, utcnow())
    await queue_manifests(session, held, f"parent_{event}")


async def queue_unreferenced(session: Writer, now: datetime, *, due_now: bool = False) -> None:
    """Queue every blob no manifest names and every manifest no tag and no index holds, due now; one already queued
    keeps its time unless ``due_now``. A manifest's untagged clock starts at its push, a blob's links keep their age."""
    at, scan = literal(now, blobs.c.created_at.type), literal("scan")
    unnamed = select(blobs.c.digest, at, at, scan).where(
        ~exists().where(manifest_blobs.c.blob_digest == blobs.c.digest)
    )
    loose = select(manifests.c.id, at, manifests.c.created_at, scan).where(
        ~exists().where(tags.c.manifest_id == manifests.c.id),
        ~exists().where(manifest_references.c.child_id == manifests.c.id),
    )
    columns = ["review_after", "queued_at", "event"]
    for table, key, source in ((gc_blob_reviews, "digest", unnamed), (gc_manifest_reviews, "manifest_id", loose)):
        statement = dialect_insert(session, table).from_select([key, *columns], source)
        if due_now:
            due = {"review_after": statement.excluded.review_after, "claimed_by": None}
            await session.execute(statement.on_conflict_do_update(index_elements=[key], set_=due))
        else:
            await session.execute(statement.on_conflict_do_nothing(index_elements=[key]))


async def bring_forward(session: Writer, now: datetime, queued_before: datetime) -> None:
    """Make due now every review queued before ``queued_before``: a collection with a shorter delay than the one
    that queued them (``registry gc``). Safe at any time: a review re-checks everything and postpones itself."""
    for table in (gc_blob_reviews, gc_manifest_reviews):
        waiting = and_(table.c.queued_at <= queued_before, table.c.review_after > now, table.c.claimed_by.is_(None))
        await session.execute(update(table).where(waiting).values(review_after=now))
