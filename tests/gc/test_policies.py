"""The ``retention`` and ``immutable`` sections: read from the file or the environment, and checked with the key
path of any mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry.config import Config, ConfigError, load_config
from registry.gc.policies import DEFAULT_INTERVAL, Policies

MINIMAL = "version: 0.1\nstorage: inmemory\n"
EXAMPLE = """\
retention:
  dryrun: true
  interval: 30m
  policies:
    - repositories: ["ci/**", "team/*"]
      keep:
        last: 10
        tags: ["^v[0-9]+", "^latest$"]
      delete:
        olderthan: 720h
        untagged: 48h
        referrers: true
    - repositories: ["archive/**"]
      delete:
        untagged: never
    - repositories: ["**"]
      keep:
        tags: ["^stable$"]
immutable:
  - repositories: ["prod/**"]
    tags: ["v*"]
  - repositories: ["release/app"]
"""


def load(tmp_path: Path, text: str = "", environ: dict[str, str] | None = None) -> Config:
    path = tmp_path / "config.yml"
    path.write_text(MINIMAL + text)
    return load_config(str(path), environ or {})


def policies_of(tmp_path: Path, text: str = "", environ: dict[str, str] | None = None) -> Policies:
    return Policies.from_config(load(tmp_path, text, environ))


def test_the_documented_example_reads_as_documented(tmp_path: Path) -> None:
    config = load(tmp_path, EXAMPLE + "storage:\n  inmemory: {}\n  gc:\n    untagged: 1h\n")
    assert config.ignored_sections == ()
    policies = Policies.from_config(config)
    assert (policies.dry_run, policies.interval, policies.default_untagged) == (True, 1800.0, 3600.0)
    first = policies.policy_for("ci/app")
    assert first is not None and first.repositories == ("ci/**", "team/*")
    assert (first.keep_last, first.older_than, first.untagged, first.referrers) == (10, 720 * 3600.0, 48 * 3600.0, True)
    assert first.keeps("v1.2") and first.keeps("latest") and not first.keeps("latest-rc") and not first.keeps("dev")
    assert first.deletes_tags
    assert policies.untagged_after("team/web") == 48 * 3600.0 and policies.collect_referrers("team/web")
    assert policies.untagged_after("archive/old/x") is None and not policies.collect_referrers("archive/old/x")
    fallback = policies.policy_for("team/web/sub")  # team/* holds one segment only: the catch-all applies
    assert fallback is not None and fallback.repositories == ("**",) and not fallback.deletes_tags
    assert policies.untagged_after("team/web/sub") == 3600.0  # omitted: storage.gc.untagged
    assert policies.immutable_rule("prod/app", "v1") is not None
    assert policies.immutable_rule("prod/app", "latest") is None
    assert policies.immutable_rule("release/app", "anything") is not None  # tags omitted: every tag
    assert policies.immutable_rule("release/app2", "v1") is None


def test_without_the_sections_nothing_is_deleted_and_nothing_is_immutable(tmp_path: Path) -> None:
    policies = policies_of(tmp_path)
    assert policies.policies == () and policies.immutable == () and not policies.deletes_tags
    assert (policies.dry_run, policies.interval) == (False, DEFAULT_INTERVAL)
    assert policies.policy_for("any/repo") is None and policies.immutable_rule("any/repo", "v1") is None
    assert policies.untagged_after("any/repo") == load(tmp_path).storage.gc.untagged
    assert not policies.collect_referrers("any/repo")


def test_the_defaults_constructor_the_collector_uses() -> None:
    policies = Policies(default_untagged=60.0)
    assert policies.untagged_after("a/b") == 60.0 and not policies.collect_referrers("a/b")


def test_the_first_matching_policy_applies(tmp_path: Path) -> None:
    text = """\
retention:
  policies:
    - repositories: [ci/keep/*]
      delete: {untagged: 1h}
    - repositories: [ci/**]
      keep: {last: 3}
      delete: {untagged: 2h}
"""
    policies = policies_of(tmp_path, text)
    assert policies.untagged_after("ci/keep/a") == 3600.0
    assert policies.untagged_after("ci/other") == 7200.0
    assert policies.untagged_after("ci") == 7200.0  # ci/** holds ci itself
    policy = policies.policy_for("ci/keep/a")
    assert policy is not None and not policy.deletes_tags  # the first match decides, with no tag rules


def test_environment_overrides(tmp_path: Path) -> None:
    policies_json = json.dumps([{"repositories": ["ci/**"], "keep": {"last": 2}, "delete": {"olderthan": "1h"}}])
    environ = {
        "REGISTRY_RETENTION_DRYRUN": "true",
        "REGISTRY_RETENTION_INTERVAL": "5m",
        "REGISTRY_RETENTION_POLICIES": policies_json,
        "REGISTRY_IMMUTABLE": '[{"repositories": ["prod/**"], "tags": ["v*"]}]',
    }
    config = load(tmp_path, "retention:\n  interval: 1h\n", environ)
    assert config.ignored_env == () and config.ignored_sections == ()
    policies = Policies.from_config(config)
    assert (policies.dry_run, policies.interval) == (True, 300.0)
    policy = policies.policy_for("ci/x/y")
    assert policy is not None and (policy.keep_last, policy.older_than) == (2, 3600.0)
    assert policies.immutable_rule("prod/a", "v2") is not None


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("retention: [a]\n", "retention", "expected a mapping"),
        ("retention:\n  dryrun: yes please\n", "retention.dryrun", "true or false"),
        ("retention:\n  interval: hourly\n", "retention.interval", "invalid duration"),
        ("retention:\n  interval: 0\n", "retention.interval", "more than 0"),
        ("retention:\n  policy: []\n", "retention.policy", "unknown key"),
        ("retention:\n  policies: {repositories: [a]}\n", "retention.policies", "expected a list"),
        ("retention:\n  policies: [a]\n", "retention.policies[0]", "expected a mapping"),
        ("retention:\n  policies: [{keep: {last: 1}}]\n", "retention.policies[0].repositories", "non-empty list"),
        ("retention:\n  policies: [{repositories: []}]\n", "retention.policies[0].repositories", "non-empty"),
        ("retention:\n  policies: [{repositories: [Team/*]}]\n", "retention.policies[0].repositories[0]", "'T'"),
        ("retention:\n  policies: [{repositories: ['a/{b,c}']}]\n", "retention.policies[0].repositories[0]", "'{'"),
        ("retention:\n  policies: [{repositories: [a, 7]}]\n", "retention.policies[0].repositories[1]", "string"),
        ("retention:\n  policies: [{repositories: [a], kept: {}}]\n", "retention.policies[0].kept", "unknown key"),
        ("retention:\n  policies: [{repositories: [a], keep: {last: -1}}]\n", "retention.policies[0].keep.last", ""),
        ("retention:\n  policies: [{repositories: [a], keep: {last: ten}}]\n", "retention.policies[0].keep.last", ""),
        ("retention:\n  policies: [{repositories: [a], keep: {last: true}}]\n", "retention.policies[0].keep.last", ""),
        (
            "retention:\n  policies: [{repositories: [a], keep: {tags: ['^v(']}}]\n",
            "retention.policies[0].keep.tags[0]",
            "invalid regular expression",
        ),
        (
            "retention:\n  policies: [{repositories: [a], keep: {count: 1}}]\n",
            "retention.policies[0].keep.count",
            "last, tags",
        ),
        (
            "retention:\n  policies: [{repositories: [a], delete: {olderthan: 30d}}]\n",
            "retention.policies[0].delete.olderthan",
            "invalid duration",
        ),
        (
            "retention:\n  policies: [{repositories: [a], delete: {untagged: -1h}}]\n",
            "retention.policies[0].delete.untagged",
            "negative",
        ),
        (
            "retention:\n  policies: [{repositories: [a], delete: {referrers: 1}}]\n",
            "retention.policies[0].delete.referrers",
            "true or false",
        ),
        ("immutable: {repositories: [a]}\n", "immutable", "expected a list"),
        ("immutable: [{tags: [v*]}]\n", "immutable[0].repositories", "non-empty list"),
        ("immutable: [{repositories: [a], tags: [v*, '']}]\n", "immutable[0].tags[1]", "non-empty string"),
        ("immutable: [{repositories: [a], tag: [v*]}]\n", "immutable[0].tag", "repositories, tags"),
    ],
)
def test_bad_input_names_the_key(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    config = load(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        Policies.from_config(config)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ") and fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bad_input_from_the_environment_names_the_key(tmp_path: Path) -> None:
    config = load(tmp_path, environ={"REGISTRY_RETENTION_POLICIES": '[{"repositories": ["a"], "keep": {"last": "x"}}]'})
    with pytest.raises(ConfigError) as caught:
        Policies.from_config(config)
    assert caught.value.key == "retention.policies[0].keep.last"


def test_zero_and_false_durations(tmp_path: Path) -> None:
    text = """\
retention:
  policies:
    - repositories: [now]
      delete: {untagged: 0, olderthan: 0}
    - repositories: [never]
      delete: {untagged: false}
"""
    policies = policies_of(tmp_path, text)
    now = policies.policy_for("now")
    assert now is not None and (now.untagged, now.older_than) == (0.0, 0.0)
    assert policies.untagged_after("never") is None


def test_immutable_tag_globs(tmp_path: Path) -> None:
    policies = policies_of(
        tmp_path, "immutable:\n  - repositories: [prod/*]\n    tags: ['v*', 'release-?', '[0-9]*']\n"
    )
    protected = ["v1", "v1.2.3", "release-1", "2024.01"]
    free = ["latest", "V1", "release-10", "xv1"]
    assert all(policies.immutable_rule("prod/app", tag) is not None for tag in protected)
    assert all(policies.immutable_rule("prod/app", tag) is None for tag in free)
    assert policies.immutable_rule("prod/app/sub", "v1") is None
    assert policies.guards("prod/app") and not policies.guards("dev/app")
