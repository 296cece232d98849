"""Tag retention: the tags the ``retention`` policies let go are deleted, repository by repository, on a schedule.

A repository is visited when a policy that deletes tags applies to it (the listing is narrowed in SQL, then each name
is matched). Its deletion candidates come from SQL oldest first, a page at a time: older than ``delete.olderthan``
and behind the ``keep.last`` most recently pushed. Those a keep pattern or an immutable rule holds are left; the
others are deleted in small transactions, each re-checking under the repository's lock that the tag was not pushed
again since it was read. Deleting a tag queues the manifest it named for the collector, which removes it once the
repository's ``delete.untagged`` delay has passed and nothing else holds it.

Every worker and replica may run this: a tag already deleted by another is skipped, so applying twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from registry.db import queries, retention_queries
from registry.db.engine import Database
from registry.db.retention_queries import TagKey, TagRow
from registry.db.schedule import every
from registry.db.sessions import Writer
from registry.events.sink import EventSink
from registry.gc.policies import Policies, RetentionPolicy

log = logging.getLogger("registry.retention")
REPOSITORY_PAGE = 500  # repositories read at a time
TAG_PAGE = 500  # deletion candidates read at a time
DELETE_BATCH = 100  # tags deleted in one transaction: short ones, so pushes never wait long behind retention

Deletion = tuple[str, str]  # (repository, tag)


async def apply_retention(
    db: Database, policies: Policies, *, dry_run: bool, now: datetime | None = None, events: EventSink | None = None
) -> list[Deletion]:
    """Apply the policies to every repository; the (repository, tag) pairs deleted, or that would be with
    ``dry_run`` (then nothing is deleted). Each deletion is reported through ``events`` as a client's tag delete is
    (a delete event naming the repository and the tag, in the deleting transaction)."""
    if not policies.deletes_tags:
        return []
    now = now or datetime.now(UTC)
    deleted: list[Deletion] = []
    async for repo, policy in _repositories(db, policies):
        tags = await apply_to_repository(db, policies, repo, policy, dry_run=dry_run, now=now, events=events)
        deleted += [(repo, tag) for tag in tags]
    if deleted or dry_run:
        verb = "would delete" if dry_run else "deleted"
        log.info("retention%s: %s %d tag(s)", " (dry run)" if dry_run else "", verb, len(deleted))
    return deleted


async def _repositories(db: Database, policies: Policies) -> AsyncIterator[tuple[str, RetentionPolicy]]:
    """Each repository with a policy that deletes tags, and that policy, by name (keyset pagination)."""
    within, last = policies.tag_repositories(), None
    while True:
        async with db.read() as session:
            names = await queries.list_repositories(session, last, REPOSITORY_PAGE, within)
        for name in names:
            policy = policies.policy_for(name)
            if policy is not None and policy.deletes_tags:
                yield name, policy
        if len(names) < REPOSITORY_PAGE:
            return
        last = names[-1]


async def apply_to_repository(
    db: Database,
    policies: Policies,
    repo: str,
    policy: RetentionPolicy,
    *,
    dry_run: bool,
    now: datetime,
    events: EventSink | None = None,
) -> list[str]:
    """The tags of ``repo`` the policy lets go, deleted unless ``dry_run``."""
    gone: list[str] = []
    async for page in _candidates(db, repo, policy, now):
        doomed = [row for row in page if not policy.keeps(row.name) and policies.immutable_rule(repo, row.name) is None]
        if dry_run:
            gone += [row.name for row in doomed]
            for row in doomed:
                log.info("retention (dry run): would delete %s:%s", repo, row.name)
            continue
        for start in range(0, len(doomed), DELETE_BATCH):
            gone += await db.write(_deleter(repo, doomed[start : start + DELETE_BATCH], events))
    if gone and not dry_run:
        log.info("retention: deleted %d tag(s) of %s", len(gone), repo)
    return gone


async def _candidates(db: Database, repo: str, policy: RetentionPolicy, now: datetime) -> AsyncIterator[list[TagRow]]:
    """Pages of the repository's tags older than ``delete.olderthan`` and behind the ``keep.last`` latest."""
    pushed_before = None if policy.older_than is None else now - timedelta(seconds=policy.older_than)
    async with db.read() as session:
        repo_id = await queries.repository_id(session, repo)
        if repo_id is None:
            return
        earlier_than: TagKey | None = None
        if policy.keep_last:
            earlier_than = await retention_queries.nth_latest(session, repo_id, policy.keep_last)
            if earlier_than is None:
                return  # no more tags than it keeps
    after: TagKey | None = None
    while True:
        async with db.read() as session:
            page = await retention_queries.old_tags(
                session, repo_id, pushed_before=pushed_before, earlier_than=earlier_than, after=after, limit=TAG_PAGE
            )
        if page:
            yield page
        if len(page) < TAG_PAGE:
            return
        after = page[-1].key


def _deleter(
    repo: str, rows: Sequence[TagRow], events: EventSink | None = None
) -> Callable[[Writer], Coroutine[Any, Any, list[str]]]:
    reports = {row.name: events.deleted(repo, tag=row.name) for row in rows} if events is not None else {}

    async def delete(session: Writer) -> list[str]:
        """Under the repository's lock, each tag not pushed again since it was read is deleted (through the same
        path as ``DELETE /v2/<name>/manifests/<tag>``), and its manifest queued for review."""
        repo_id = await queries.repository_id(session, repo, lock=True)
        if repo_id is None:
            return []
        deleted, unchanged = [], await retention_queries.unchanged(session, rows)
        for row in rows:
            if row.id not in unchanged:
                continue
            if await queries.untag(session, repo_id, row.name, "retention"):
                deleted.append(row.name)
                if events is not None:
                    await events.record(session, reports[row.name])
        return deleted

    return delete


async def retention_until(
    stop: asyncio.Event,
    db: Database,
    policies: Policies,
    interval: float | None = None,
    events: EventSink | None = None,
) -> None:
    """Apply the policies every ``interval`` (default ``retention.interval``) until ``stop`` is set: once per
    interval across all workers and replicas (``registry.db.schedule``). Stopped, never cancelled: a batch in
    progress finishes."""
    every_seconds = policies.interval if interval is None else interval
    dry_run = policies.dry_run
    await every(
        stop, db, "retention", every_seconds, lambda: apply_retention(db, policies, dry_run=dry_run, events=events)
    )
