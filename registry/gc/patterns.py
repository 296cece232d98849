"""The patterns of the retention and immutability rules, each compiled once.

A repository glob is a path glob (zot's ``repoNames``): ``*`` and ``?`` stay within one path segment, ``**`` crosses
segments, and ``ci/**`` holds ``ci`` itself too (``**`` as a whole segment matches zero or more segments). A tag glob
is ``fnmatch``'s (a tag holds no ``/``). A keep pattern is a regular expression, searched (anchor it with ``^``/``$``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fnmatch import translate

from registry.names import NAME_CHARACTERS

GLOB_CHARACTERS = frozenset(NAME_CHARACTERS + "*?")
# a whole-segment ``**``: at the start (``**/``), in the middle (``/**/``), at the end (``/**``), or alone
_SEGMENTS = {"**/": "(?:.*/)?", "/**/": "/(?:.*/)?", "/**": "(?:/.*)?"}


def check_repository_glob(glob: str) -> str | None:
    """What is wrong with a repository glob, or None: it holds name characters, ``*`` and ``?`` only."""
    if not glob:
        return "expected a non-empty glob"
    bad = next((c for c in glob if c not in GLOB_CHARACTERS), None)
    if bad is not None:
        return f"{glob!r} holds {bad!r}: a repository glob holds lowercase name characters, '*' and '?'"
    return None


def repository_regex(glob: str) -> str:
    """The regular expression (to be matched whole) of a repository glob."""
    if glob == "**":
        return ".*"
    parts: list[str] = []
    i = 0
    while i < len(glob):
        segment = _segment_at(glob, i)
        if segment is not None:
            parts.append(_SEGMENTS[segment])
            i += len(segment)
        elif glob.startswith("**", i):
            parts.append(".*")
            i += 2
        else:
            parts.append({"*": "[^/]*", "?": "[^/]"}.get(glob[i], re.escape(glob[i])))
            i += 1
    return "".join(parts)


def _segment_at(glob: str, i: int) -> str | None:
    """The whole-segment ``**`` form starting at ``i``, if one does."""
    if i == 0 and glob.startswith("**/"):
        return "**/"
    if glob.startswith("/**/", i):
        return "/**/"
    if glob.startswith("/**", i) and i + 3 == len(glob):
        return "/**"
    return None


def sql_glob(glob: str) -> str:
    """An ``fnmatch`` glob (where ``*`` crosses ``/``, as ``registry.db.globs`` takes them) holding every name the
    repository glob does, and maybe more: what SQL can narrow a listing to before ``repository_regex`` decides."""
    return glob.replace("/**", "*").replace("**/", "*").replace("**", "*")


def tag_regex(glob: str) -> str:
    return translate(glob)


class FirstMatch:
    """Which of several lists of repository globs a name matches first: one compiled expression for them all."""

    def __init__(self, glob_lists: Sequence[Sequence[str]]) -> None:
        branches = [
            f"(?P<g{index}>{'|'.join(f'(?:{repository_regex(g)})' for g in globs)})"
            for index, globs in enumerate(glob_lists)
            if globs
        ]
        self._regex = re.compile("|".join(branches)) if branches else None

    def index(self, name: str) -> int | None:
        """The index of the first list with a glob matching all of ``name``; None when none does."""
        found = self._regex.fullmatch(name) if self._regex is not None else None
        if found is None or found.lastgroup is None:
            return None
        return int(found.lastgroup[1:])
