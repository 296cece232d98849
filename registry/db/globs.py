"""Which repositories a ``NameSet`` holds, as SQL: a filtered listing is filtered by the database, page by page.

A repository name holds only ``names.NAME_CHARACTERS``, so each bracket class of a glob is resolved here to the name
characters it matches (by ``fnmatchcase`` itself), and a glob whose literal character no name can hold matches
nothing. What is left (name characters, ``*``, ``?`` and classes of name characters) means the same as
``fnmatchcase`` in SQLite's ``GLOB`` and, on PostgreSQL, in ``LIKE`` (a glob without classes) or a regular
expression (``~``), for every name the registry can hold. A glob's literal prefix also becomes a range
(``name >= 'team/' AND name < 'team0'``) that the name index answers, since names sort byte-wise on both databases
(``models.Name``); ``team/*`` is that range alone.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import Boolean, ColumnElement, String, and_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from registry.db.sessions import chunked
from registry.names import NAME_CHARACTERS, NameSet

STAR, ONE = "*", "?"  # a token is one of these, a name character, or a class: "[" + its name characters + "]"


def conditions(column: ColumnElement[str], within: NameSet) -> list[ColumnElement[bool]] | None:
    """Conditions on ``column`` that together (OR) hold the names of ``within``: one ``IN`` per chunk of the explicit
    names, one per glob; None when every name is within (a glob of stars); an empty list when none is."""
    names, matches = set(within.names), []
    for glob in within.globs:
        tokens = _tokens(glob)
        if tokens is None:
            continue
        if tokens == [STAR]:
            return None
        if all(_is_literal(token) for token in tokens):
            names.add("".join(tokens))
        else:
            matches.append(_glob_condition(column, tokens))
    return [column.in_(chunk) for chunk in chunked(names)] + matches


def _tokens(glob: str) -> list[str] | None:
    """The glob as tokens over name characters; None when no repository name can match it."""
    tokens: list[str] = []
    i = 0
    while i < len(glob):
        c, i = glob[i], i + 1
        end = _class_end(glob, i) if c == "[" else None
        if c == STAR:
            if tokens[-1:] != [STAR]:
                tokens.append(STAR)
        elif c == ONE:
            tokens.append(ONE)
        elif end is not None:
            chars = "".join(n for n in NAME_CHARACTERS if fnmatchcase(n, glob[i - 1 : end + 1]))
            if not chars:
                return None
            tokens.append(chars if len(chars) == 1 else f"[{chars}]")
            i = end + 1
        elif c in NAME_CHARACTERS:
            tokens.append(c)
        else:
            return None
    return tokens


def _class_end(glob: str, start: int) -> int | None:
    """The index of the ``]`` closing the class opened just before ``start``, as fnmatch finds it (a ``]`` first,
    or after ``!``, is a member); None when it is never closed (fnmatch then reads ``[`` as itself)."""
    j = start
    if j < len(glob) and glob[j] == "!":
        j += 1
    if j < len(glob) and glob[j] == "]":
        j += 1
    while j < len(glob) and glob[j] != "]":
        j += 1
    return j if j < len(glob) else None


def _is_literal(token: str) -> bool:
    return token in NAME_CHARACTERS and len(token) == 1


def _glob_condition(column: ColumnElement[str], tokens: list[str]) -> ColumnElement[bool]:
    prefix = ""
    for token in tokens:
        if not _is_literal(token):
            break
        prefix += token
    parts: list[ColumnElement[bool]] = []
    if prefix:
        parts += [column >= prefix, column < prefix[:-1] + chr(ord(prefix[-1]) + 1)]
    if tokens[len(prefix) :] != [STAR]:
        parts.append(GlobMatch(column, _sqlite_glob(tokens), _like(tokens), _regex(tokens)))
    return and_(*parts) if len(parts) > 1 else parts[0]


def _class_body(token: str) -> str:
    """A class's characters with ``-`` last, where both syntaxes read it as itself."""
    chars = token[1:-1]
    return chars.replace("-", "") + ("-" if "-" in chars else "")


def _sqlite_glob(tokens: list[str]) -> str:
    return "".join(f"[{_class_body(t)}]" if t.startswith("[") else t for t in tokens)


def _like(tokens: list[str]) -> str:
    """The LIKE pattern (several times faster than a regular expression on PostgreSQL); "" when a class needs one."""
    if any(token.startswith("[") for token in tokens):
        return ""
    special = {STAR: "%", ONE: "_", "_": "\\_"}  # no name holds % or a backslash, LIKE's escape
    return "".join(special.get(t, t) for t in tokens)


def _regex(tokens: list[str]) -> str:
    special = {STAR: ".*", ONE: ".", ".": r"\."}
    return "^" + "".join(f"[{_class_body(t)}]" if t.startswith("[") else special.get(t, t) for t in tokens) + "$"


class GlobMatch(ColumnElement[bool]):
    """``column`` matches a glob: ``GLOB`` on SQLite; ``LIKE``, or ``~`` for a glob with a class, on PostgreSQL.
    Each form is written into the SQL as a literal (a part of the statement's cache key), made of name characters
    and ``*?[]^$.%\\`` only."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a comparison: never "GLOB '...' = 1" on SQLite
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("glob", InternalTraversal.dp_string),
        ("like_pattern", InternalTraversal.dp_string),
        ("regex", InternalTraversal.dp_string),
    ]

    def __init__(self, column: ColumnElement[str], glob: str, like: str, regex: str) -> None:
        self.column = column
        self.glob = glob
        self.like_pattern = like
        self.regex = regex


@compiles(GlobMatch)
def _compile_glob(element: GlobMatch, compiler: Any, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} GLOB {compiler.render_literal_value(element.glob, String())}"


@compiles(GlobMatch, "postgresql")
def _compile_postgresql(element: GlobMatch, compiler: Any, **kw: Any) -> str:
    operator, pattern = ("LIKE", element.like_pattern) if element.like_pattern else ("~", element.regex)
    return f"{compiler.process(element.column, **kw)} {operator} {compiler.render_literal_value(pattern, String())}"
