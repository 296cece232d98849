"""The built-in token service's access rules: what a user (or anyone, with ``anonymouspull``) may do to a resource,
and the grant for a request: the intersection of what was asked and what is allowed (``*`` is every action)."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from registry.auth.access import ANY, DELETE, PULL, PUSH, REGISTRY, REPOSITORY
from registry.auth.settings import Rule, ServerSettings

CONCRETE = (PULL, PUSH, DELETE)
USER_PLACEHOLDER = "${user}"


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _glob_for(pattern: str, user: str | None) -> str | None:
    """A rule's pattern as the glob it is for ``user``; None when it names the user and there is none."""
    if USER_PLACEHOLDER not in pattern:
        return pattern
    return None if user is None else pattern.replace(USER_PLACEHOLDER, _glob_escape(user))


def _matches(pattern: str, name: str, user: str | None) -> bool:
    glob = _glob_for(pattern, user)
    return glob is not None and fnmatchcase(name, glob)


def _applies(rule: Rule, user: str, groups: dict[str, frozenset[str]]) -> bool:
    return "*" in rule.users or user in rule.users or any(user in groups.get(group, ()) for group in rule.groups)


def _rules_for(server: ServerSettings, user: str | None) -> list[Rule]:
    return [rule for rule in server.rules if user is not None and _applies(rule, user, server.groups)]


def pull_globs(server: ServerSettings, user: str | None) -> tuple[str, ...]:
    """Globs of the repositories ``user`` may pull: a name matches one exactly when ``allowed`` grants it pull."""
    pulling = [rule for rule in _rules_for(server, user) if PULL in rule.actions or ANY in rule.actions]
    patterns = [*server.anonymous_pull, *(pattern for rule in pulling for pattern in rule.repositories)]
    return tuple(dict.fromkeys(glob for pattern in patterns if (glob := _glob_for(pattern, user)) is not None))


def allowed(server: ServerSettings, user: str | None, kind: str, name: str) -> frozenset[str]:
    """The actions ``user`` (None: anonymous) may take on a resource."""
    rules = _rules_for(server, user)
    if kind == REGISTRY and name == "catalog":
        return frozenset({ANY}) if any(rule.catalog for rule in rules) else frozenset()
    if kind != REPOSITORY:
        return frozenset()
    actions: set[str] = set()
    if any(_matches(pattern, name, user) for pattern in server.anonymous_pull):
        actions.add(PULL)
    for rule in rules:
        if any(_matches(pattern, name, user) for pattern in rule.repositories):
            actions |= rule.actions
    return frozenset(actions)


def intersect(requested: tuple[str, ...], allowed_actions: frozenset[str]) -> list[str]:
    if ANY in allowed_actions:
        return list(requested)
    granted: list[str] = []
    for action in requested:
        choices = [a for a in CONCRETE if a in allowed_actions] if action == ANY else [action]
        granted.extend(a for a in choices if a in allowed_actions and a not in granted)
    return granted


def grant(
    server: ServerSettings, user: str | None, scopes: list[tuple[str, str, tuple[str, ...]]]
) -> list[tuple[str, str, list[str]]]:
    """The token's ``access`` claim for the scopes asked: a scope with nothing allowed is left out (per the spec)."""
    merged: dict[tuple[str, str], list[str]] = {}
    for kind, name, actions in scopes:
        listed = merged.setdefault((kind, name), [])
        listed.extend(a for a in actions if a not in listed)
    result = []
    for (kind, name), asked in merged.items():
        granted = intersect(tuple(asked), allowed(server, user, kind, name))
        if granted:
            result.append((kind, name, granted))
    return result
