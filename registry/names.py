"""Repository names and tags, checked with the distribution-spec's regular expressions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from registry.errors import ErrorCode

# spec.md "Pulling manifests": <name> and <reference> grammar
_NAME_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
# every character a name may hold, in byte order
NAME_CHARACTERS = "".join(sorted("abcdefghijklmnopqrstuvwxyz0123456789._-/"))
# distribution limits the whole name to 255 characters (spec: clients SHOULD keep host + name under 255)
NAME_MAX_LENGTH = 255


@dataclass(frozen=True)
class NameSet:
    """Some repositories: those in ``names``, and those whose name matches one of ``globs`` (``fnmatch``, where
    ``*`` matches ``/`` too). What a caller may pull is one; the catalog lists it (``registry.db.globs``)."""

    names: frozenset[str] = frozenset()
    globs: tuple[str, ...] = ()

    def __contains__(self, name: str) -> bool:
        return name in self.names or any(fnmatchcase(name, glob) for glob in self.globs)


def is_valid_name(name: str) -> bool:
    return len(name) <= NAME_MAX_LENGTH and NAME_RE.fullmatch(name) is not None


def is_valid_tag(tag: str) -> bool:
    return TAG_RE.fullmatch(tag) is not None


def check_name(name: str) -> str:
    if not is_valid_name(name):
        raise ErrorCode.NAME_INVALID.error({"name": name})
    return name


def check_tag(tag: str) -> str:
    if not is_valid_tag(tag):
        raise ErrorCode.TAG_INVALID.error({"tag": tag})
    return tag
