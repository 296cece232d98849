"""Repository globs as documented: ``*`` and ``?`` within one path segment, ``**`` across segments (and ``ci/**``
holds ``ci``); the first of several glob lists a name matches; the SQL narrowing never leaves a name out."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

import pytest

from registry.gc.patterns import FirstMatch, check_repository_glob, repository_regex, sql_glob


@pytest.mark.parametrize(
    ("glob", "name", "matches"),
    [
        ("ci/*", "ci/app", True),
        ("ci/*", "ci/app/sub", False),
        ("ci/*", "ci", False),
        ("ci/**", "ci", True),
        ("ci/**", "ci/app", True),
        ("ci/**", "ci/app/sub/deeper", True),
        ("ci/**", "cia/app", False),
        ("**/cache", "cache", True),
        ("**/cache", "a/b/cache", True),
        ("**/cache", "a/bcache", False),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "a/xb", False),
        ("**", "anything/at/all", True),
        ("team-?/app", "team-1/app", True),
        ("team-?/app", "team-12/app", False),
        ("*-cache", "web-cache", True),
        ("*-cache", "a/web-cache", False),
        ("a.b", "a.b", True),
        ("a.b", "axb", False),  # a dot is itself
        ("app", "app", True),
        ("app", "app/x", False),
    ],
)
def test_repository_globs(glob: str, name: str, matches: bool) -> None:
    assert (re.fullmatch(repository_regex(glob), name) is not None) is matches
    assert (FirstMatch([[glob]]).index(name) == 0) is matches
    if matches:  # the SQL narrowing (fnmatch semantics) never leaves out a name the glob holds
        assert fnmatchcase(name, sql_glob(glob))


def test_first_match_over_many_lists() -> None:
    first = FirstMatch([["a/*"], [], ["a/**", "b"], ["**"]])
    assert [first.index(name) for name in ("a/x", "a/x/y", "a", "b", "c")] == [0, 2, 2, 2, 3]
    assert FirstMatch([]).index("a") is None


@pytest.mark.parametrize(("glob", "bad"), [("", "non-empty"), ("Team/*", "'T'"), ("a/{b,c}", "'{'"), ("a/[bc]", "'['")])
def test_repository_globs_hold_name_characters_and_wildcards_only(glob: str, bad: str) -> None:
    problem = check_repository_glob(glob)
    assert problem is not None and bad in problem
    assert check_repository_glob("ci/**/x-?_y.z") is None
