"""The table of configuration keys (``registry.config_schema``, the drivers' and auth providers' sections): every
declared key takes its ``REGISTRY_*`` override, and a wrong value of every kind names the key in full."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from registry.auth.settings import PROVIDERS
from registry.config import OWNED, load_config
from registry.config_schema import SCHEMA
from registry.forwarded import TrustedProxies
from registry.settings import (
    Bool,
    Choice,
    ConfigError,
    Duration,
    Int,
    Items,
    Kind,
    Open,
    Section,
    Str,
    Strings,
    Text,
    leaves,
)
from storage_backends import BACKENDS, parameters

MINIMAL = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /srv/registry\n"
# keys whose value is checked beyond its kind: an example that passes, and the value it gives
EXAMPLES: dict[str, tuple[str, Any]] = {
    "version": ("0.1", "0.1"),
    "http.addr": (":6000", ":6000"),
    "http.net": ("TCP", "tcp"),
    "http.host": ("https://r.example.com/", "https://r.example.com"),
    "http.prefix": ("/mirror/", "/mirror"),
    "http.trustedproxies": ("10.0.0.0/8, ::1", TrustedProxies.parse(["10.0.0.0/8", "::1"])),
    "http.debug.addr": ("127.0.0.1:5001", "127.0.0.1:5001"),
    "http.debug.prometheus.path": ("/prom", "/prom"),
    "database.url": ("sqlite:////srv/r.db", "sqlite:////srv/r.db"),
    "storage.filesystem.rootdirectory": ("/data/reg", "/data/reg"),
    "auth.token.server.path": ("/token", "/token"),
    "ui.path": ("/console", "/console/"),
    "auth.token.server.access": ('[{"users": [a], "actions": [pull]}]', None),
}
# what a driver needs besides the key under test
DRIVER_ENV = {"s3": {"REGISTRY_STORAGE_S3_BUCKET": "b", "REGISTRY_STORAGE_S3_REGION": "r"}}


def _declared() -> list[tuple[str, Kind]]:
    keys = list(leaves(SCHEMA))
    for name in BACKENDS:
        section = parameters(name)
        assert section is not None
        keys += leaves(section, f"storage.{name}.")
    for provider, section in PROVIDERS.items():
        keys += leaves(section, f"auth.{provider}.")
    return keys


DECLARED = _declared()


def _example(path: str, kind: Kind) -> tuple[str, Any]:
    if path in EXAMPLES:
        return EXAMPLES[path]
    if isinstance(kind, Int) and kind.minimum is not None and kind.minimum > 7:
        return str(kind.minimum), kind.minimum
    return kind.example


def _dig(raw: dict[str, Any], path: str) -> Any:
    node: Any = raw
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def test_the_table_declares_every_section_we_read() -> None:
    paths = {path for path, _ in DECLARED}
    assert {"http.tls.minimumtls", "storage.s3.chunksize", "auth.token.server.expiration", "proxy.ttl"} <= paths
    assert len(paths) == len(DECLARED), "a key declared twice"


@pytest.mark.parametrize(("path", "kind"), DECLARED, ids=[path for path, _ in DECLARED])
def test_every_key_takes_its_environment_override(tmp_path: Path, path: str, kind: Kind) -> None:
    text, expected = _example(path, kind)
    driver = path.split(".")[1] if path.startswith("storage.") and path.count(".") == 2 else None
    environ: dict[str, str] = {"REGISTRY_STORAGE": driver, **DRIVER_ENV.get(driver, {})} if driver in BACKENDS else {}
    environ["REGISTRY_" + path.upper().replace(".", "_")] = text
    config_file = tmp_path / "config.yml"
    config_file.write_text(MINIMAL)
    config = load_config(str(config_file), environ)
    assert config.ignored_env == ()
    value = kind.read(_dig(config.raw, path), path)
    if expected is not None:
        assert value == expected
    if driver in BACKENDS:
        assert config.storage.params[path.rsplit(".", 1)[1]] == value


WRONG: dict[type[Kind], object] = {
    Bool: "maybe",
    Int: "many",
    Duration: "soon",
    Choice: "nope",
    Str: ["a", "list"],
    Text: ["a", "list"],
    Strings: {"a": "mapping"},
    Open: "text",
    Items: "text",
    Section: "text",
}


@pytest.mark.parametrize(
    ("path", "kind"),
    [(path, kind) for path, kind in DECLARED if type(kind) in WRONG or isinstance(kind, Open | Section)],
    ids=[path for path, kind in DECLARED if type(kind) in WRONG or isinstance(kind, Open | Section)],
)
def test_a_wrong_value_of_every_kind_names_the_key(tmp_path: Path, path: str, kind: Kind) -> None:
    wrong = WRONG.get(type(kind), WRONG[Open])
    with pytest.raises(ConfigError) as caught:
        kind.read(wrong, path)
    assert caught.value.key == path
    assert caught.value.message
    if path.split(".")[0] in OWNED and not path.startswith("storage.s3."):
        raw = yaml.safe_load(MINIMAL)
        *parents, name = path.split(".")
        node = raw
        for parent in parents:
            node = node.setdefault(parent, {})
        node[name] = wrong
        config_file = tmp_path / "config.yml"
        config_file.write_text(yaml.safe_dump(raw))
        with pytest.raises(ConfigError) as loading:
            load_config(str(config_file), {})
        assert loading.value.key == path


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (Str(), True, "true"),
        (Str(), 0.1, "0.1"),
        (Text(), 5, "5"),
        (Text(), "", None),
        (Bool(lenient=True), "yes", True),
        (Int(lenient=True), "12", 12),
        (Duration(), 0, 0.0),
        (Duration(10.0, zero=10.0), "0s", 10.0),
        (Duration(never=True), "never", None),
        (Duration(seconds=True, limit=60.0), 30, 30.0),
        (Choice("warn", "info", aliases={"warning": "warn"}), "WARNING", "warn"),
        (Strings(split=True), "a, b c", ["a", "b", "c"]),
        (Strings(), "a", ["a"]),
    ],
)
def test_kinds_read_what_distribution_writes(kind: Kind, value: object, expected: object) -> None:
    assert kind.read(value, "k") == expected


@pytest.mark.parametrize(
    ("kind", "value", "key", "fragment"),
    [
        (Int(minimum=1), 0, "k", "at least 1"),
        (Int(minimum=0), -1, "k", "negative"),
        (Int(maximum=9), 10, "k", "at most 9"),
        (Int(), True, "k", "an integer"),
        (Bool(), 1, "k", "true or false"),
        (Duration(), "-1m", "k", "negative"),
        (Duration(seconds=True, limit=60.0), 61, "k", "positive duration"),
        (Strings(), ["a", 3], "k[1]", "non-empty string"),
        (Text(required=True), None, "k", "non-empty string"),
        (Section({"a": Bool()}, strict=True), {"b": 1}, "k.b", "unknown key, expected one of a"),
        (Items(Section({"a": Int()})), [{"a": 1}, {"a": "x"}], "k[1].a", "an integer"),
    ],
)
def test_kinds_refuse_naming_the_key(kind: Kind, value: object, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        kind.read(value, "k")
    assert caught.value.key == key
    assert fragment in caught.value.message
