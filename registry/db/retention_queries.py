"""The reads of tag retention and immutable tags (``registry.gc``): which tags a policy may delete, whether one is
still as it was read, and which tags hold a manifest.

A repository's tags are ordered by ``(updated_at, id)``: when each was last pushed, the earlier row first among
tags pushed in the same instant. Retention walks the old end of that order a page at a time (keyset pagination),
stopping short of the most recent tags a policy keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, bindparam, or_, select

from registry.db.models import manifest_references, manifests, tags
from registry.db.sessions import Reader


class TagKey(NamedTuple):
    """A tag's place in its repository's push order."""

    updated_at: datetime
    id: int


class TagRow(NamedTuple):
    id: int
    name: str
    manifest_id: int
    updated_at: datetime

    @property
    def key(self) -> TagKey:
        return TagKey(self.updated_at, self.id)


def _earlier(key: TagKey) -> ColumnElement[bool]:
    return or_(tags.c.updated_at < key.updated_at, and_(tags.c.updated_at == key.updated_at, tags.c.id < key.id))


def _later(key: TagKey) -> ColumnElement[bool]:
    return or_(tags.c.updated_at > key.updated_at, and_(tags.c.updated_at == key.updated_at, tags.c.id > key.id))


async def nth_latest(session: Reader, repo_id: int, n: int) -> TagKey | None:
    """The key of the ``n``-th most recently pushed tag (1: the latest); None when there are fewer."""
    query = (
        select(tags.c.updated_at, tags.c.id)
        .where(tags.c.repository_id == repo_id)
        .order_by(tags.c.updated_at.desc(), tags.c.id.desc())
        .offset(n - 1)
        .limit(1)
    )
    row = (await session.execute(query)).first()
    return None if row is None else TagKey(row.updated_at, row.id)


async def old_tags(
    session: Reader,
    repo_id: int,
    *,
    pushed_before: datetime | None,
    earlier_than: TagKey | None,
    after: TagKey | None,
    limit: int,
) -> list[TagRow]:
    """Up to ``limit`` tags, oldest first: last pushed before ``pushed_before``, earlier in the push order than
    ``earlier_than`` (the most recent tag kept), and later than ``after`` (the previous page's last); each None:
    no such bound."""
    query = select(tags.c.id, tags.c.name, tags.c.manifest_id, tags.c.updated_at).where(tags.c.repository_id == repo_id)
    if pushed_before is not None:
        query = query.where(tags.c.updated_at < pushed_before)
    if earlier_than is not None:
        query = query.where(_earlier(earlier_than))
    if after is not None:
        query = query.where(_later(after))
    query = query.order_by(tags.c.updated_at, tags.c.id).limit(limit)
    return [TagRow(*row) for row in (await session.execute(query)).all()]


async def unchanged(session: Reader, rows: Sequence[TagRow]) -> set[int]:
    """The ids of the tags that still name the manifest they named when read, and were not pushed since."""
    query = select(tags.c.id, tags.c.manifest_id, tags.c.updated_at).where(tags.c.id.in_([row.id for row in rows]))
    current = {found.id: found for found in (await session.execute(query)).all()}
    return {row.id for row in rows if (found := current.get(row.id)) is not None and _same(found, row)}


def _same(found: Any, row: TagRow) -> bool:
    return bool(found.manifest_id == row.manifest_id and found.updated_at <= row.updated_at)


_TAG_DIGEST = (
    select(manifests.c.digest)
    .join(tags, tags.c.manifest_id == manifests.c.id)
    .where(tags.c.repository_id == bindparam("repo_id"), tags.c.name == bindparam("tag"))
)


async def tag_digest(session: Reader, repo_id: int, tag: str) -> str | None:
    """The digest of the manifest ``tag`` names in the repository, or None when there is no such tag."""
    found: str | None = await session.scalar(_TAG_DIGEST, {"repo_id": repo_id, "tag": tag})
    return found


async def tags_holding(session: Reader, repo_id: int, digest: str) -> Sequence[str]:
    """The tags naming the manifest ``digest`` or an index that lists it: deleting it would take them or break
    what they name."""
    target = (
        select(manifests.c.id)
        .where(manifests.c.repository_id == repo_id, manifests.c.digest == digest)
        .scalar_subquery()
    )
    parents = select(manifest_references.c.parent_id).where(manifest_references.c.child_id == target)
    query = (
        select(tags.c.name)
        .where(tags.c.repository_id == repo_id, or_(tags.c.manifest_id == target, tags.c.manifest_id.in_(parents)))
        .order_by(tags.c.name)
    )
    return list((await session.scalars(query)).all())
