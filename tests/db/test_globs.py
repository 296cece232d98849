"""A listing within a ``NameSet`` is filtered by the database (``registry.db.globs``), and holds exactly the names
``fnmatchcase`` puts in the set, page by page, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import asyncpg

from registry.db import globs, migrate, queries
from registry.db.engine import Database
from registry.db.models import repositories
from registry.db.sessions import Writer
from registry.names import NAME_CHARACTERS, NameSet, is_valid_name

COMPONENTS = ["a", "ab", "b-c", "x.y", "x_y", "team", "app"]
NAMES = sorted({"/".join(parts) for size in (1, 2, 3) for parts in itertools.permutations(COMPONENTS, size)})
SYNTAX = "*?[]!^-"


def _star_some(name: str, picks: list[int]) -> str:
    """A name with some characters replaced by wildcards or classes: a glob likely to match something."""
    chars = list(name)
    for pick in picks:
        position, kind = pick % len(chars), pick % 7
        chars[position] = ["*", "?", "*", "?", f"[{chars[position]}x]", f"[!{chars[position]}]", "[a-c]"][kind]
    return "".join(chars)


GLOBS = st.one_of(
    st.builds(_star_some, st.sampled_from(NAMES), st.lists(st.integers(0, 1000), min_size=1, max_size=3)),
    st.text(alphabet="ab-._/0tx" + SYNTAX, max_size=8),
    st.text(max_size=6),
)
LAST = st.one_of(st.none(), st.sampled_from(NAMES), st.text(alphabet=NAME_CHARACTERS + "A~ ", max_size=6))
EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await migrate.upgrade(database)

    async def insert(session: Writer) -> None:
        for name in NAMES:
            await queries.ensure_repository(session, name)

    await database.write(insert)
    yield database
    await database.dispose()


def test_the_names_are_valid_repository_names() -> None:
    assert all(is_valid_name(name) for name in NAMES) and len(NAMES) > 200
    assert set("".join(NAMES)) <= set(NAME_CHARACTERS)


@EXAMPLES
@given(patterns=st.lists(GLOBS, min_size=1, max_size=3), names=st.frozensets(st.sampled_from(NAMES), max_size=3))
async def test_a_listing_within_a_name_set_is_what_fnmatch_says(
    database: Database, patterns: list[str], names: frozenset[str]
) -> None:
    within = NameSet(names, tuple(patterns))
    async with database.read() as session:
        listed = await queries.list_repositories(session, None, len(NAMES) + 1, within)
    assert listed == [name for name in NAMES if name in within]


@EXAMPLES
@given(
    patterns=st.lists(GLOBS, max_size=2), names=st.frozensets(st.sampled_from(NAMES)), last=LAST, n=st.integers(1, 9)
)
async def test_pages_within_a_name_set_follow_each_other_exactly(
    database: Database, patterns: list[str], names: frozenset[str], last: str | None, n: int
) -> None:
    """As the catalog asks: n + 1 names, n shown, the next page after the last one shown while there was more."""
    within, pages, after = NameSet(names, tuple(patterns)), [], last
    async with database.read() as session:
        while True:
            found = await queries.list_repositories(session, after, n + 1, within)
            pages.append(found[:n])
            if len(found) <= n:
                break
            after = found[n - 1]
    expected = [name for name in NAMES if name in within and (last is None or name > last)]
    assert [name for page in pages for name in page] == expected
    assert all(len(page) == n for page in pages[:-1]) and len(pages[-1]) <= n


@pytest.mark.parametrize(
    ("glob", "sqlite", "postgresql"),
    [
        ("team/*", None, None),  # a range alone
        ("team/?pp", "GLOB 'team/?pp'", "LIKE 'team/_pp'"),
        ("*/a.b_c", "GLOB '*/a.b_c'", r"LIKE '%/a.b\_c'"),
        ("a[!a-z]*", "GLOB 'a[./0123456789_-]*'", r"~ '^a[./0123456789_-].*$'"),
        ("*[.x]?", "GLOB '*[.x]?'", r"~ '^.*[.x].$'"),
    ],
)
def test_what_a_glob_becomes(glob: str, sqlite: str | None, postgresql: str | None) -> None:
    [condition] = globs.conditions(repositories.c.name, NameSet(globs=(glob,))) or []
    on_sqlite = str(condition.compile(dialect=sqlite_dialect.dialect(), compile_kwargs={"literal_binds": True}))
    on_postgresql = str(condition.compile(dialect=asyncpg.dialect(), compile_kwargs={"literal_binds": True}))
    if sqlite is None:
        assert on_sqlite == f"repositories.name >= '{glob[:-1]}' AND repositories.name < '{glob[:-2]}0'"
        assert on_postgresql == on_sqlite
        return
    assert on_sqlite.endswith(f"repositories.name {sqlite}")
    assert on_postgresql.endswith(f"repositories.name {postgresql}")


@pytest.mark.parametrize("glob", ["*", "**", "***"])
def test_a_glob_of_stars_is_every_name(glob: str) -> None:
    assert globs.conditions(repositories.c.name, NameSet(frozenset({"x"}), ("team/*", glob))) is None


@pytest.mark.parametrize("glob", ["Team/*", "a b", "[A-Z]*", "[]", "x[", "ä*"])
def test_a_glob_no_name_can_match_is_no_condition(glob: str) -> None:
    assert globs.conditions(repositories.c.name, NameSet(globs=(glob,))) == []
