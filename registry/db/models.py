"""The metadata schema, as SQLAlchemy Core tables (no query needs the ORM, and importing it was a sixth of a
SQLite registry's start-up). Every reference between manifests and blobs is a row, so that a garbage collector can
find what nothing references with a query.

    repositories ─┬─ repository_blobs ── blobs          (a blob is visible in a repository only through its link)
                  ├─ manifests ─┬─ manifest_blobs ── blobs      (config and layers)
                  │             ├─ manifest_references          (index -> child manifest)
                  │             └─ subject_digest               (referrers)
                  └─ tags ── manifests
    uploads (by repository name)                                (sessions; their bytes live in storage)
    gc_blob_reviews, gc_manifest_reviews, gc_blob_deletions     (the collector's queues and tombstones: registry.gc)
    storage_binding                                             (the storage the database indexes: one row)
    event_outbox                                                (notifications to deliver, one row per endpoint)
    scheduled_jobs                                              (when each periodic job is next due: one run for all)
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
Id = BigInteger().with_variant(Integer(), "sqlite")
# Names sort byte-wise (as distribution lists them) so keyset pagination with ``name > last`` is stable everywhere.
Name = String(255).with_variant(String(255, collation="C"), "postgresql")
TagName = String(128).with_variant(String(128, collation="C"), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | str) -> datetime:
    """A timestamp as SQLite gives it back (text, or a datetime without its zone) or PostgreSQL does; all are UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _timestamp(name: str, index: bool | None = None) -> Column[datetime]:
    return Column(name, DateTime(timezone=True), nullable=False, default=utcnow, index=index)


metadata = MetaData(naming_convention=NAMING_CONVENTION)

repositories = Table(
    "repositories",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", Name, nullable=False, unique=True),
    _timestamp("created_at"),
    # bumped by triggers on ``tags`` (migration 0002) in the statement that changes any of the repository's tags
    Column("tags_version", BigInteger, nullable=False, server_default="0"),
)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", String(200), primary_key=True),
    Column("size", BigInteger, nullable=False),
    _timestamp("created_at"),
    # the lease: no collector deletes the blob before this (an upload, a mount or a HEAD of its digest renews it)
    Column("protected_until", DateTime(timezone=True)),
)

repository_blobs = Table(
    "repository_blobs",
    metadata,
    Column("repository_id", ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("blob_digest", ForeignKey("blobs.digest"), primary_key=True, index=True),
    _timestamp("created_at"),
)

manifests = Table(
    "manifests",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("repository_id", ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("digest", String(200), nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("artifact_type", String(255)),
    Column("subject_digest", String(200)),
    Column("annotations", Text),
    Column("size", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    _timestamp("created_at"),
    Index("uq_manifests_repository_id_digest", "repository_id", "digest", unique=True),
    Index("ix_manifests_repository_id_subject_digest", "repository_id", "subject_digest"),
)

manifest_blobs = Table(
    "manifest_blobs",
    metadata,
    Column("manifest_id", ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True),
    Column("blob_digest", ForeignKey("blobs.digest"), primary_key=True, index=True),
)

manifest_references = Table(
    "manifest_references",
    metadata,
    Column("parent_id", ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True),
    Column("child_id", ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True, index=True),
)

tags = Table(
    "tags",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("repository_id", ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("name", TagName, nullable=False),
    Column("manifest_id", ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False, index=True),
    _timestamp("updated_at"),
    Index("uq_tags_repository_id_name", "repository_id", "name", unique=True),
    Index("ix_tags_repository_id_updated_at", "repository_id", "updated_at"),  # retention: newest first
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(36), primary_key=True),
    # a name, not a reference: a repository exists once it holds a blob or a manifest, not when an upload starts
    Column("repository_name", Name, nullable=False),
    Column("size", BigInteger, nullable=False, default=0),
    _timestamp("created_at"),
    _timestamp("updated_at", index=True),
    # the one request (on any worker or replica) writing to the session, and when it last said so
    Column("lease", String(36)),
    Column("leased_at", DateTime(timezone=True)),
    # the hash of the session's bytes so far, saved with its size (registry.content.resumable_hash): null when the
    # bytes must be hashed again from storage
    Column("hash_state", LargeBinary),
)


# The collector's review queues (GitLab's design): every dereference queues its target for review at
# ``review_after``; a worker claims due rows (``claimed_by``, until ``review_after`` again), re-checks every reference
# in the transaction that deletes, and deletes the row. ``queued_at`` is the latest dereference.
def _review_queue(name: str, key: Column[object]) -> Table:
    return Table(
        name,
        metadata,
        key,
        Column("review_after", DateTime(timezone=True), nullable=False, index=True),
        Column("queued_at", DateTime(timezone=True), nullable=False),
        Column("event", String(32), nullable=False),
        Column("claimed_by", String(36)),
    )


gc_blob_reviews = _review_queue("gc_blob_reviews", Column("digest", String(200), primary_key=True))
gc_manifest_reviews = _review_queue(
    "gc_manifest_reviews", Column("manifest_id", ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True)
)

# A blob whose row is gone and whose bytes are being deleted: an upload of the same digest waits for it to end.
gc_blob_deletions = Table(
    "gc_blob_deletions",
    metadata,
    Column("digest", String(200), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
)

# The collector's last run, whichever worker, replica or ``registry gc`` made it (one row, id 1): the UI's garbage
# collection page shows it. ``runner``: the host and process that ran it.
gc_last_run = Table(
    "gc_last_run",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("seconds", Float, nullable=False),
    Column("runner", String(255), nullable=False),
    Column("manifests", Integer, nullable=False),
    Column("blobs", Integer, nullable=False),
    Column("bytes_freed", BigInteger, nullable=False),
    Column("links_removed", Integer, nullable=False),
    Column("reviews", Integer, nullable=False),
)

# The storage the database indexes, recorded when a command first opens it with a storage (one row, id 1):
# serve, import and gc refuse a database whose row names another storage (registry.content.binding).
# ``imported_at``: when ``registry import`` last finished loading distribution's repositories from it.
storage_binding = Table(
    "storage_binding",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("driver", String(32), nullable=False),
    Column("bucket", String(255)),
    Column("endpoint", String(1024)),
    Column("rootdirectory", String(4096), nullable=False),
    _timestamp("created_at"),
    Column("imported_at", DateTime(timezone=True)),
)

# Notifications waiting for delivery (registry.events): one row per event and endpoint, written in the transaction
# of the change it reports. A delivery worker claims due rows (``claimed_by``, until ``due_at`` again), posts them
# and deletes them once the endpoint accepted them; a failure hands them back due later (``attempts`` more).
event_outbox = Table(
    "event_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("endpoint", String(255), nullable=False),
    Column("payload", Text, nullable=False),  # the event as JSON (distribution's envelope holds a list of them)
    _timestamp("created_at"),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("claimed_by", String(36)),
    Index("ix_event_outbox_endpoint_due_at", "endpoint", "due_at"),
)

# When each periodic job is next due (registry.db.schedule): the worker whose update moves ``due_at`` forward runs it,
# so a job runs once per interval across every worker of every replica.
scheduled_jobs = Table(
    "scheduled_jobs",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=False),
)
