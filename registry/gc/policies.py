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
from typing import TYPE_CHECKING, Any

from registry.gc.patterns import FirstMatch, check_repository_glob, repository_regex, sql_glob, tag_regex
from registry.names import NameSet
from registry.settings import Bool, Duration, Int, Items, Section, Strings

if TYPE_CHECKING:
    from registry.config import Config

DEFAULT_INTERVAL = 3600.0
FROM_GC = "storage.gc.untagged"  # ``delete.untagged`` omitted: the collector's own setting applies


def _repository_glob(glob: str) -> str:
    problem = check_repository_glob(glob)
    if problem is not None:
        raise ValueError(problem)
    return glob


def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {text!r}: {exc}") from None


def _positive(seconds: float) -> float:
    if seconds == 0:
        raise ValueError("must be more than 0")
    return seconds


REPOSITORIES = Strings(required=True, each=_repository_glob, expected="a non-empty list of repository globs")
POLICY = Section(
    {
        "repositories": REPOSITORIES,
        "keep": Section({"last": Int(minimum=0), "tags": Strings([], each=_regex)}, strict=True),
        "delete": Section(
            {
                **{"olderthan": Duration(), "untagged": Duration(FROM_GC, never=True)},  # untagged 0: at once
                "referrers": Bool(False),
            },
            strict=True,
        ),
    },
    strict=True,
)
RETENTION = Section(  # retention: ours; its keys are in the module's docstring
    {"dryrun": Bool(False), "interval": Duration(DEFAULT_INTERVAL, check=_positive), "policies": Items(POLICY)},
    strict=True,
)
IMMUTABLE = Items(Section({"repositories": REPOSITORIES, "tags": Strings([])}, strict=True))


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
        retention = RETENTION.read(config.raw.get("retention"), "retention")
        return cls(
            default_untagged=default_untagged,
            policies=tuple(_policy(policy, default_untagged) for policy in retention["policies"]),
            immutable=tuple(
                ImmutableRule(tuple(rule["repositories"]), tuple(rule["tags"]) or ("*",))
                for rule in IMMUTABLE.read(config.raw.get("immutable"), "immutable")
            ),
            dry_run=retention["dryrun"],
            interval=retention["interval"],
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


def _policy(values: dict[str, Any], default_untagged: float | None) -> RetentionPolicy:
    keep, delete = values["keep"], values["delete"]
    return RetentionPolicy(
        repositories=tuple(values["repositories"]),
        keep_last=keep["last"],
        keep_tags=tuple(keep["tags"]),
        older_than=delete["olderthan"],
        untagged=default_untagged if delete["untagged"] == FROM_GC else delete["untagged"],
        referrers=delete["referrers"],
    )
