"""The token service's rules as globs (what the catalog lists to a user): a repository matches one of
``pull_globs(user)`` exactly when ``allowed`` lets that user pull it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from registry.auth.access import ANY, PULL, REPOSITORY
from registry.auth.rules import allowed, pull_globs
from registry.auth.settings import ACTIONS, Rule, ServerSettings
from registry.names import NameSet

USERS = ["alice", "bob", "a*b", "x[y"]  # user names may hold glob syntax: ${user} matches them literally
PATTERNS = st.one_of(
    st.sampled_from(["*", "team/*", "home/${user}/*", "${user}", "t?am/a", "[!h]*", "a*b/*", "x[y/z"]),
    st.text(alphabet="ab/*?", max_size=4),
)
RULES = st.builds(
    Rule,
    users=st.frozensets(st.sampled_from([*USERS, "*"]), max_size=2),
    groups=st.frozensets(st.just("g"), max_size=1),
    repositories=st.lists(PATTERNS, max_size=2).map(tuple),
    actions=st.frozensets(st.sampled_from(ACTIONS), max_size=2),
)
SERVERS = st.builds(
    ServerSettings,
    path=st.just("/auth/token"),
    key=st.just("key.pem"),
    htpasswd=st.none(),
    expiration=st.just(300.0),
    refresh_expiration=st.just(3600.0),
    anonymous_pull=st.lists(PATTERNS, max_size=2).map(tuple),
    groups=st.just({"g": frozenset({"bob"})}),
    rules=st.lists(RULES, max_size=3).map(tuple),
)
NAMES = st.one_of(
    st.sampled_from(["team/a", "home/alice/x", "home/a*b/x", "alice", "a*b", "x[y/z", "tam/a", "ab/b", "h"]),
    st.text(alphabet="ab/tem", max_size=5),
)


@settings(max_examples=300, deadline=None)
@given(server=SERVERS, user=st.one_of(st.none(), st.sampled_from(USERS)), name=NAMES)
def test_pull_globs_hold_exactly_what_the_rules_allow_to_pull(
    server: ServerSettings, user: str | None, name: str
) -> None:
    actions = allowed(server, user, REPOSITORY, name)
    assert (name in NameSet(globs=pull_globs(server, user))) == (PULL in actions or ANY in actions)
