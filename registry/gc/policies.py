"""What may be deleted beyond unreferenced blobs, and what never may: the ``retention`` policies and the
``immutable`` rules of the configuration (zot's ``storage.retention`` and Harbor's tag retention and immutability
rules are the anchors).

    retention:
      dryrun: false                   log and return what would be deleted, delete nothing
      interval: 1h                    how often the policies are applied
      policies:                       the first whose repositories glob matches a repository applies to it
        - repositories: [ci/**]       globs (``registry.gc.patterns``)
          keep: {last: 10, tags: [^v[0-9]+]}
          delete: {olderthan: 720h, untagged: 48h, referrers: false}
    immutable:
      - repositories: [prod/**]
        tags: [v*]                    tag globs; omitted: every tag
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from registry.config import Config, ConfigError, duration_value
from registry.gc.patterns import FirstMatch, check_repository_glob, repository_regex, sql_glob, tag_regex
from registry.names import NameSet

DEFAULT_INTERVAL = 3600.0
NEVER = ("never", "false")  # ``untagged: never`` (or false): untagged manifests are never collected there


@dataclass(frozen=True)
class RetentionPolicy:
    """``keep.last``, ``keep.tags`` and ``delete.olderthan`` decide which tags go (``deletes_tags``); a tag goes when
    no keep rule holds it, it is older than ``olderthan`` (when set), and no immutable rule protects it."""

    repositories: tuple[str, ...]
    keep_last: int | None = None
    keep_tags: tuple[re.Pattern[str], ...] = ()
    older_than: float | None = None  # seconds
    untagged: float | None = None  # seconds; None: never (already resolved to ``storage.gc.untagged`` when omitted)
    referrers: bool = False

    @property
    def deletes_tags(self) -> bool:
        return self.keep_last is not None or self.older_than is not None

    def keeps(self, tag: str) -> bool:
        """Whether a keep pattern holds ``tag``."""
        return any(pattern.search(tag) for pattern in self.keep_tags)


@dataclass(frozen=True)
class ImmutableRule:
    repositories: tuple[str, ...]
    tags: tuple[str, ...] = ("*",)
    _repositories: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _tags: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_repositories", re.compile("|".join(map(repository_regex, self.repositories))))
        object.__setattr__(self, "_tags", re.compile("|".join(map(tag_regex, self.tags))))

    def covers(self, repo: str) -> bool:
        return self._repositories.fullmatch(repo) is not None

    def protects(self, repo: str, tag: str) -> bool:
        return self.covers(repo) and self._tags.fullmatch(tag) is not None

    def describe(self) -> str:
        return f"repositories {', '.join(self.repositories)}; tags {', '.join(self.tags)}"


@dataclass(frozen=True)
class Policies:
    default_untagged: float | None = None
    policies: tuple[RetentionPolicy, ...] = ()
    immutable: tuple[ImmutableRule, ...] = ()
    dry_run: bool = False
    interval: float = DEFAULT_INTERVAL
    _first: FirstMatch = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_first", FirstMatch([policy.repositories for policy in self.policies]))

    @classmethod
    def from_config(cls, config: Config) -> Policies:
        default_untagged = config.storage.gc.untagged
        section = _section(config.raw.get("retention"), "retention")
        return cls(
            default_untagged=default_untagged,
            policies=tuple(_policies(section.get("policies"), default_untagged)),
            immutable=tuple(_immutable_rules(config.raw.get("immutable"))),
            dry_run=_bool(section.get("dryrun"), "retention.dryrun", False),
            interval=_interval(section.get("interval")),
        )

    def policy_for(self, repo: str) -> RetentionPolicy | None:
        index = self._first.index(repo)
        return None if index is None else self.policies[index]

    def untagged_after(self, repo: str) -> float | None:
        """Seconds after a manifest lost its last tag (or was pushed untagged) that it may be collected; None: never.
        An index's children and the referrers of a kept manifest are never collected this way."""
        policy = self.policy_for(repo)
        return self.default_untagged if policy is None else policy.untagged

    def collect_referrers(self, repo: str) -> bool:
        """Whether untagged referrers of a manifest that is kept may be collected too (by default they follow their
        subject: kept while it is)."""
        policy = self.policy_for(repo)
        return policy is not None and policy.referrers

    @property
    def deletes_tags(self) -> bool:
        return any(policy.deletes_tags for policy in self.policies)

    def tag_repositories(self) -> NameSet:
        """Every repository a policy that deletes tags may apply to, and maybe more (a listing narrowed in SQL)."""
        globs = {sql_glob(glob) for policy in self.policies if policy.deletes_tags for glob in policy.repositories}
        return NameSet(globs=tuple(sorted(globs)))

    def guards(self, repo: str) -> bool:
        """Whether an immutable rule covers ``repo`` (some of its tags may be protected)."""
        return any(rule.covers(repo) for rule in self.immutable)

    def immutable_rule(self, repo: str, tag: str) -> ImmutableRule | None:
        """The first immutable rule protecting ``tag`` in ``repo``, or None."""
        return next((rule for rule in self.immutable if rule.protects(repo, tag)), None)


# --- reading the configuration ---


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _section(value: Any, key: str, allowed: tuple[str, ...] = ("dryrun", "interval", "policies")) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a mapping, got {_show(value)}")
    unknown = sorted(str(name) for name in value if name not in allowed)
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"unknown key, expected one of {', '.join(allowed)}")
    return value


def _list(value: Any, key: str, *, required: bool = False) -> list[Any]:
    if value is None and not required:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or (required and not value):
        raise ConfigError(key, f"expected a {'non-empty ' if required else ''}list, got {_show(value)}")
    return value


def _strings(value: Any, key: str, *, required: bool = False) -> list[str]:
    items = _list(value, key, required=required)
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{key}[{index}]", f"expected a non-empty string, got {_show(item)}")
    return items


def _bool(value: Any, key: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(key, f"expected true or false, got {_show(value)}")
    return value


_duration = duration_value


def _interval(value: Any) -> float:
    seconds = _duration(value, "retention.interval")
    if seconds == 0:
        raise ConfigError("retention.interval", "must be more than 0")
    return DEFAULT_INTERVAL if seconds is None else seconds


def _repositories(value: Any, key: str) -> tuple[str, ...]:
    globs = _strings(value, key, required=True)
    for index, glob in enumerate(globs):
        problem = check_repository_glob(glob)
        if problem is not None:
            raise ConfigError(f"{key}[{index}]", problem)
    return tuple(globs)


def _policies(value: Any, default_untagged: float | None) -> list[RetentionPolicy]:
    return [
        _policy(item, f"retention.policies[{index}]", default_untagged)
        for index, item in enumerate(_list(value, "retention.policies"))
    ]


def _policy(value: Any, key: str, default_untagged: float | None) -> RetentionPolicy:
    section = _section(value, key, ("repositories", "keep", "delete"))
    keep = _section(section.get("keep"), f"{key}.keep", ("last", "tags"))
    delete = _section(section.get("delete"), f"{key}.delete", ("olderthan", "untagged", "referrers"))
    return RetentionPolicy(
        repositories=_repositories(section.get("repositories"), f"{key}.repositories"),
        keep_last=_count(keep.get("last"), f"{key}.keep.last"),
        keep_tags=_regexes(keep.get("tags"), f"{key}.keep.tags"),
        older_than=_duration(delete.get("olderthan"), f"{key}.delete.olderthan"),
        untagged=_untagged(delete.get("untagged"), f"{key}.delete.untagged", default_untagged),
        referrers=_bool(delete.get("referrers"), f"{key}.delete.referrers", False),
    )


def _count(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise ConfigError(key, f"expected a count of tags (0 or more), got {_show(value)}")
    return value


def _regexes(value: Any, key: str) -> tuple[re.Pattern[str], ...]:
    patterns = []
    for index, text in enumerate(_strings(value, key)):
        try:
            patterns.append(re.compile(text))
        except re.error as exc:
            raise ConfigError(f"{key}[{index}]", f"invalid regular expression {text!r}: {exc}") from None
    return tuple(patterns)


def _untagged(value: Any, key: str, default: float | None) -> float | None:
    if value is None:
        return default
    if value is False or value in NEVER:
        return None
    return _duration(value, key)


def _immutable_rules(value: Any) -> list[ImmutableRule]:
    rules = []
    for index, item in enumerate(_list(value, "immutable")):
        key = f"immutable[{index}]"
        section = _section(item, key, ("repositories", "tags"))
        repositories = _repositories(section.get("repositories"), f"{key}.repositories")
        tags = _strings(section.get("tags"), f"{key}.tags") or ["*"]
        rules.append(ImmutableRule(repositories, tuple(tags)))
    return rules
