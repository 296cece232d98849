"""A repository's tags a page at a time, from a sorted list each process keeps while it is current.

Every request reads the repository's id and ``tags_version`` (one indexed lookup, which also tells a missing
repository from one without tags). The database bumps the version in the statement that changes any of its tags
(migration 0002), whichever worker or replica makes the change, so a list kept at the version just read is exactly
what SQL would answer; at any other version the list is read again. Reading the version before the tags means a
list is never older than the version it is kept at.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass

from registry.db import queries
from registry.db.engine import Database
from registry.errors import ErrorCode

# tags kept over all repositories, each repository weighing one more than its tags: some MiB at most. A repository
# with this many tags or more is paged from SQL (after one read of this many rows at each version, to find out)
MAX_KEPT_TAGS = 100_000


@dataclass(frozen=True)
class TagPage:
    tags: list[str]
    has_more: bool
    body: bytes  # ``{"name": ..., "tags": [...]}`` as starlette's JSONResponse renders it


@dataclass
class _Kept:
    version: tuple[int, int]  # the repository's id and tags_version the list was read at
    tags: list[str] | None  # sorted byte-wise, as SQL sorts them; None: too many to keep
    rendered: tuple[slice, list[str], bytes] | None = None  # the last page cut from it: repeated listings reuse it

    @property
    def weight(self) -> int:
        return 1 + len(self.tags or ())


class TagLists:
    def __init__(self, db: Database, max_kept: int = MAX_KEPT_TAGS) -> None:
        self._db = db
        self._max_kept = max_kept
        self._kept: OrderedDict[str, _Kept] = OrderedDict()  # least recently used first
        self._weight = 0

    async def page(self, repo: str, last: str | None, n: int) -> TagPage:
        """Up to ``n`` tags after ``last`` (spec: "Listing Tags"); NAME_UNKNOWN when the repository does not exist."""
        async with self._db.read() as session:
            version = await queries.tags_version(session, repo)
            if version is None:
                raise ErrorCode.NAME_UNKNOWN.error({"name": repo})
            kept = self._kept.get(repo)
            if kept is None or kept.version != version:
                tags = await queries.list_tags(session, version[0], None, self._max_kept)
                kept = self._keep(repo, _Kept(version, tags if len(tags) < self._max_kept else None))
            else:
                self._kept.move_to_end(repo)
            if kept.tags is None:
                tags = await queries.list_tags(session, version[0], last, n + 1) if n else []
                return TagPage(tags[:n], len(tags) > n, _body(repo, tags[:n]))
        return _page(repo, kept, last, n)

    def _keep(self, repo: str, kept: _Kept) -> _Kept:
        old = self._kept.pop(repo, None)
        self._weight += kept.weight - (old.weight if old else 0)
        self._kept[repo] = kept
        while self._weight > self._max_kept:
            self._weight -= self._kept.popitem(last=False)[1].weight
        return kept


def _page(repo: str, kept: _Kept, last: str | None, n: int) -> TagPage:
    assert kept.tags is not None
    start = 0 if last is None else bisect_right(kept.tags, last)
    window = slice(start, min(start + n, len(kept.tags)))
    has_more = n > 0 and window.stop < len(kept.tags)
    if kept.rendered is None or kept.rendered[0] != window:
        tags = kept.tags[window]
        kept.rendered = (window, tags, _body(repo, tags))
    return TagPage(kept.rendered[1], has_more, kept.rendered[2])


def _body(repo: str, tags: list[str]) -> bytes:
    return json.dumps({"name": repo, "tags": tags}, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
