"""``health.file``, ``health.http`` and ``health.tcp`` read as distribution's configuration.md documents them: lists
of checks, intervals of 10s and thresholds of 0 by default, a status of 200; a wrong value is an error at load naming
the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.config import Config, ConfigError, FileCheckConfig, HttpCheckConfig, TcpCheckConfig, load_config

MINIMAL = "version: 0.1\nstorage: inmemory\n"
DISTRIBUTIONS_EXAMPLE = """
health:
  file:
    - file: /path/to/checked/file
      interval: 10s
  http:
    - uri: http://server.to.check/must/return/200
      headers:
        Authorization: [Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==]
      statuscode: 200
      timeout: 3s
      interval: 10s
      threshold: 3
  tcp:
    - addr: redis-server.domain.com:6379
      timeout: 3s
      interval: 10s
      threshold: 3
"""


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Config:
    path = tmp_path / "config.yml"
    path.write_text(MINIMAL + text)
    return load_config(str(path), environ or {})


def test_distributions_example(tmp_path: Path) -> None:
    health = load(tmp_path, DISTRIBUTIONS_EXAMPLE).health
    assert health.file == (FileCheckConfig(file="/path/to/checked/file", interval=10.0),)
    assert health.http == (
        HttpCheckConfig(
            uri="http://server.to.check/must/return/200",
            headers={"Authorization": ["Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="]},
            timeout=3.0,
            threshold=3,
        ),
    )
    assert health.tcp == (TcpCheckConfig(addr="redis-server.domain.com:6379", timeout=3.0, threshold=3),)


def test_defaults_as_distributions(tmp_path: Path) -> None:
    text = "health:\n  file: [{file: down}]\n  http: [{uri: 'http://a/', statuscode: 0}]\n  tcp: [{addr: 'b:1'}]\n"
    config = load(tmp_path, text)
    file, http, tcp = config.health.file[0], config.health.http[0], config.health.tcp[0]
    assert (file.interval, file.threshold, file.enabled) == (10.0, 0, True)
    assert (http.statuscode, http.timeout, http.headers, http.interval) == (200, None, {}, 10.0)
    assert (tcp.timeout, tcp.interval, tcp.threshold) == (None, 10.0, 0)
    assert config.ignored_sections == ()


def test_no_lists_no_checks(tmp_path: Path) -> None:
    health = load(tmp_path, "health:\n  file:\n").health
    assert (health.file, health.http, health.tcp) == ((), (), ())


def test_environment_overrides_take_a_list(tmp_path: Path) -> None:
    environ = {
        "REGISTRY_HEALTH_FILE": "[{file: /srv/drain, interval: 2s}]",
        "REGISTRY_HEALTH_TCP": '[{"addr": "[::1]:5432", "timeout": "1s"}]',
    }
    health = load(tmp_path, DISTRIBUTIONS_EXAMPLE, environ).health
    assert health.file == (FileCheckConfig(file="/srv/drain", interval=2.0),)
    assert health.tcp == (TcpCheckConfig(addr="[::1]:5432", timeout=1.0),)
    assert len(health.http) == 1


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("file: [{interval: 1s}]", "health.file[0].file", "non-empty string"),
        ("file: [{file: a, threshold: -1}]", "health.file[0].threshold", "negative"),
        ("file: [{file: a, interval: soon}]", "health.file[0].interval", "duration"),
        ("file: [{file: a, enabled: true}]", "health.file[0].enabled", "unknown key"),
        ("file: /srv/drain", "health.file", "a list"),
        ("http: [{uri: server.to.check/x}]", "health.http[0].uri", "http or https URL"),
        ("http: [{uri: 'http://a/', statuscode: 42}]", "health.http[0].statuscode", "status code"),
        ("http: [{uri: 'http://a/', statuscode: '200'}]", "health.http[0].statuscode", "integer"),
        ("http: [{uri: 'http://a/', timeout: -1s}]", "health.http[0].timeout", "negative"),
        ("http: [{uri: 'http://a/', headers: {A: {b: c}}}]", "health.http[0].headers.A", "list of strings"),
        ("http: [{uri: 'http://a/', headers: {'A B': [c]}}]", "health.http[0].headers.A B", "header name"),
        ("tcp: [{addr: redis}]", "health.tcp[0].addr", "host:port"),
        ("tcp: [{addr: '::1:6379'}]", "health.tcp[0].addr", "brackets"),
        ("tcp: [{addr: 'redis:99999'}]", "health.tcp[0].addr", "1..65535"),
        ("tcp: [{addr: 'a:1'}, {addr: 'a:1'}]", "health.tcp[1].addr", "checked twice"),
        ("file: [{file: 'a:1'}]\n  tcp: [{addr: 'a:1'}]", "health.tcp[0].addr", "checked twice"),
    ],
)
def test_mistakes_are_errors_at_load(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f"health:\n  {text}\n")
    assert caught.value.key == key
    assert fragment in caught.value.message
