from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from registry.config import (
    CheckConfig,
    Config,
    ConfigError,
    DebugConfig,
    FileCheckConfig,
    default_config,
    listen_host_port,
    load_config,
    normalize_prefix,
    parse_duration,
)

# The config.yml shipped in the registry:2 image.
IMAGE_CONFIG = """\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""

MINIMAL = """\
version: 0.1
storage:
  filesystem:
    rootdirectory: /srv/registry
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return str(path)


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), environ or {})


def test_image_config_loads(tmp_path: Path) -> None:
    config = load(tmp_path, IMAGE_CONFIG)
    assert config.version == "0.1"
    assert config.storage.driver == "filesystem"
    assert config.storage.params == {"rootdirectory": "/var/lib/registry"}
    assert config.storage.delete_enabled is False
    assert config.storage.redirect_disabled is False
    assert config.storage.upload_purging == {"enabled": True, "age": 168 * 3600, "interval": 24 * 3600, "dryrun": False}
    assert config.http.addr == ":5000"
    assert listen_host_port(config.http.addr) == ("0.0.0.0", 5000)
    assert config.http.headers == {"X-Content-Type-Options": ["nosniff"]}
    assert config.http.prefix == ""
    assert config.http.host is None
    assert config.log_level == "info"
    assert config.log_formatter == "text"
    assert config.log_fields == {"service": "registry"}
    assert config.database_url == "sqlite+aiosqlite:////var/lib/registry/registry.db"
    assert config.workers == 1
    assert config.auth is None
    assert config.ignored_sections == ("storage.cache",)
    assert config.health.storagedriver == CheckConfig(enabled=True, interval=10.0, threshold=3)
    assert config.ignored_env == ()


def test_distribution_example_config_loads(tmp_path: Path) -> None:
    text = IMAGE_CONFIG.replace("http:", "  tag:\n    concurrencylimit: 8\nhttp:") + (
        "auth:\n  htpasswd:\n    realm: basic-realm\n    path: /etc/registry\n"
    )
    config = load(tmp_path, text)
    assert config.auth == {"htpasswd": {"realm": "basic-realm", "path": "/etc/registry"}}
    assert config.ignored_sections == ("storage.cache", "storage.tag")


def test_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = default_config({})
    data = str(tmp_path / "data")
    assert config.storage.driver == "filesystem"
    assert config.storage.params == {"rootdirectory": data}
    assert config.storage.delete_enabled is False
    assert config.database_url == f"sqlite+aiosqlite:///{data}/registry.db"
    assert listen_host_port(config.http.addr) == ("127.0.0.1", 5000)
    assert (config.log_level, config.log_formatter, config.workers) == ("info", "text", 1)
    assert config.ignored_sections == ()
    assert load_config(None, {}) == config


def test_environ_defaults_to_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_HTTP_ADDR", "127.0.0.1:7000")
    assert load_config(write(tmp_path, MINIMAL)).http.addr == "127.0.0.1:7000"


def _get(config: Config, dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


@pytest.mark.parametrize(
    ("name", "value", "attribute", "expected"),
    [
        ("REGISTRY_HTTP_ADDR", "0.0.0.0:6000", "http.addr", "0.0.0.0:6000"),
        ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/data/reg", "storage.params.rootdirectory", "/data/reg"),
        (
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY",
            "/data/reg",
            "database_url",
            "sqlite+aiosqlite:////data/reg/registry.db",
        ),
        ("REGISTRY_STORAGE_DELETE_ENABLED", "true", "storage.delete_enabled", True),
        ("REGISTRY_STORAGE_REDIRECT_DISABLE", "true", "storage.redirect_disabled", True),
        ("REGISTRY_LOG_LEVEL", "debug", "log_level", "debug"),
        ("REGISTRY_LOG_LEVEL", "WARNING", "log_level", "warn"),
        ("REGISTRY_LOG_FORMATTER", "json", "log_formatter", "json"),
        ("REGISTRY_LOG_ACCESSLOG_DISABLED", "true", "log_accesslog_disabled", True),
        (
            "REGISTRY_DATABASE_URL",
            "postgresql+asyncpg://u:p@db/registry",
            "database_url",
            "postgresql+asyncpg://u:p@db/registry",
        ),
        ("REGISTRY_HTTP_PREFIX", "/mirror/", "http.prefix", "/mirror"),
        ("REGISTRY_HTTP_WORKERS", "4", "workers", 4),
        ("REGISTRY_HTTP_SECRET", "12345", "http.secret", "12345"),
        ("REGISTRY_HTTP_HOST", "https://registry.example.com/", "http.host", "https://registry.example.com"),
        ("REGISTRY_HTTP_RELATIVEURLS", "true", "http.relativeurls", True),
        ("REGISTRY_HTTP_DRAINTIMEOUT", "60s", "http.draintimeout", 60.0),
        ("REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE", "2h", "storage.upload_purging.age", 7200.0),
        ("REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED", "false", "storage.upload_purging.enabled", False),
        ("REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd", "auth", {"htpasswd": {"path": "/auth/htpasswd"}}),
        ("registry_http_addr", ":6000", "http.addr", ":6000"),
        ("REGISTRY_HTTP_ADDR", "", "http.addr", "127.0.0.1:5000"),
    ],
)
def test_env_override(tmp_path: Path, name: str, value: str, attribute: str, expected: object) -> None:
    config = load(tmp_path, MINIMAL, {name: value})
    assert _get(config, attribute) == expected
    assert config.ignored_env == ()


def test_env_overrides_file_value(tmp_path: Path) -> None:
    config = load(tmp_path, IMAGE_CONFIG, {"REGISTRY_HTTP_ADDR": "127.0.0.1:5001", "REGISTRY_LOG_FIELDS_SERVICE": "x"})
    assert config.http.addr == "127.0.0.1:5001"
    assert config.log_fields == {"service": "x"}
    assert config.raw["http"]["addr"] == "127.0.0.1:5001"


def test_env_applies_to_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = default_config({"REGISTRY_STORAGE_DELETE_ENABLED": "true", "REGISTRY_HTTP_ADDR": ":8080"})
    assert config.storage.delete_enabled is True
    assert listen_host_port(config.http.addr) == ("0.0.0.0", 8080)


def test_env_storage_switches_driver(tmp_path: Path) -> None:
    text = MINIMAL + "  delete:\n    enabled: true\n"
    config = load(tmp_path, text, {"REGISTRY_STORAGE": "inmemory"})
    assert config.storage.driver == "inmemory"
    assert config.storage.params == {}
    assert config.storage.delete_enabled is True
    assert "filesystem" not in config.raw["storage"]
    assert config.database_url == "sqlite+aiosqlite:///:memory:"


def test_env_storage_s3_with_params_in_lexical_order(tmp_path: Path) -> None:
    environ = {
        "REGISTRY_STORAGE_S3_REGION": "us-east-1",
        "REGISTRY_STORAGE_S3_BUCKET": "images",
        "REGISTRY_STORAGE_S3_SECURE": "false",
        "REGISTRY_STORAGE": "s3",
    }
    config = load(tmp_path, MINIMAL, environ)
    assert config.storage.driver == "s3"
    assert config.storage.params == {"region": "us-east-1", "bucket": "images", "secure": False}


def test_unknown_env_vars_are_ignored(tmp_path: Path) -> None:
    environ = {
        "REGISTRY_PORT": "tcp://10.0.0.1:5000",  # set by Kubernetes for a service named "registry"
        "REGISTRY_HTTP_ADDR_EXTRA": "x",
        "REGISTRY_STORAGE_DELETE_ENABLED_NOW": "x",
        "OTHER_HTTP_ADDR": "x",
    }
    config = load(tmp_path, MINIMAL, environ)
    assert config.ignored_env == ("REGISTRY_HTTP_ADDR_EXTRA", "REGISTRY_PORT", "REGISTRY_STORAGE_DELETE_ENABLED_NOW")
    assert config.http.addr == "127.0.0.1:5000"
    assert config.raw == {"version": 0.1, "storage": {"filesystem": {"rootdirectory": "/srv/registry"}}}


def test_env_for_unimplemented_section_is_reported(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL, {"REGISTRY_REDIS_ADDR": "localhost:6379"})
    assert config.ignored_sections == ("redis",)
    assert config.raw["redis"] == {"addr": "localhost:6379"}


def test_ignored_sections_nested_and_unknown(tmp_path: Path) -> None:
    text = MINIMAL + (
        "  maintenance:\n    readonly:\n      enabled: true\n"
        "log:\n  hooks: []\n  reportcaller: true\n"
        "http:\n  debug:\n    addr: localhost:5001\n  http2:\n    disabled: false\n"
        "notifications:\n  endpoints: []\nproxy:\n  remoteurl: https://registry-1.docker.io\n"
        "validation:\n  disabled: true\ncompatibility: {}\ncatalog:\n  maxentries: 100\nstorge: typo\n"
    )
    config = load(tmp_path, text)
    assert config.storage.read_only is True
    assert config.http.debug == DebugConfig(addr="localhost:5001")
    assert config.ignored_sections == (
        "log.hooks",
        "log.reportcaller",
        "http.http2",
        "validation.disabled",  # validation.manifests.indexes is read (registry.content.validation)
        "compatibility",
        "catalog",
        "storge",
    )


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        (MINIMAL + "  delete:\n    enabled: yes please\n", "storage.delete.enabled", "'yes please'"),
        ("version: 0.1\nstorage:\n  delete:\n    enabled: true\n", "storage", "got none"),
        ("version: 0.1\n", "storage", "got none"),
        (MINIMAL + "  s3:\n    bucket: b\n", "storage", "filesystem, s3"),
        ("version: 0.1\nstorage:\n  azure:\n    accountname: a\n", "storage", "unsupported driver 'azure'"),
        ("version: 0.1\nstorage: [filesystem]\n", "storage", "expected a mapping"),
        ("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: [a, b]\n", "storage.filesystem.rootdirectory", ""),
        ("version: 0.1\nstorage:\n  filesystem: /data\n", "storage.filesystem", "expected a mapping"),
        ("version: 0.1\nstorage:\n  s3:\n    region: us-east-1\n", "storage.s3.bucket", "non-empty string"),
        (
            MINIMAL + "  maintenance:\n    uploadpurging:\n      age: a week\n",
            "storage.maintenance.uploadpurging.age",
            "",
        ),
        (
            MINIMAL + "  maintenance:\n    uploadpurging:\n      interval: 3600\n",
            "storage.maintenance.uploadpurging.interval",
            "",
        ),
        (MINIMAL + "http:\n  addr: abc\n", "http.addr", "expected host:port"),
        (MINIMAL + "http:\n  addr: ':0'\n", "http.addr", "1..65535"),
        (MINIMAL + "http:\n  addr: ':70000'\n", "http.addr", "1..65535"),
        (MINIMAL + "http:\n  addr: '::1:5000'\n", "http.addr", "brackets"),
        (MINIMAL + "http:\n  net: unix\n", "http.addr", "socket path"),
        (MINIMAL + "http:\n  net: udp\n", "http.net", "tcp, unix"),
        (MINIMAL + "http:\n  host: registry.example.com\n", "http.host", "absolute URL"),
        (MINIMAL + "http:\n  prefix: /a b/\n", "http.prefix", ""),
        (MINIMAL + "http:\n  headers:\n    X-Foo: {a: b}\n", "http.headers.X-Foo", ""),
        (MINIMAL + "http:\n  relativeurls: 'no'\n", "http.relativeurls", "true or false"),
        (MINIMAL + "http:\n  workers: 0\n", "http.workers", "at least 1"),
        (MINIMAL + "http:\n  workers: many\n", "http.workers", "an integer"),
        (MINIMAL + "http:\n  workers: true\n", "http.workers", "an integer"),
        ("version: 0.1\nstorage: inmemory\nhttp:\n  workers: 2\n", "http.workers", "single worker"),
        (MINIMAL + "http: abc\n", "http", "expected a mapping"),
        (MINIMAL + "log:\n  level: verbose\n", "log.level", "error, warn, info, debug"),
        (MINIMAL + "loglevel: trace\n", "loglevel", ""),
        (MINIMAL + "log:\n  formatter: xml\n", "log.formatter", "text, logfmt, json, logstash"),
        (MINIMAL.replace("0.1", "0.2"), "version", "'0.2'"),
        (MINIMAL.replace("version: 0.1\n", ""), "version", "missing"),
        (MINIMAL + "auth:\n  htpasswd: {}\n  token: {}\n", "auth", "exactly one provider"),
        (MINIMAL + "auth:\n  htpasswd: /etc/htpasswd\n", "auth.htpasswd", "expected a mapping"),
        (MINIMAL + "database:\n  url: registry.db\n", "database.url", "SQLAlchemy URL"),
    ],
)
def test_invalid_values_name_the_key(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ")
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"REGISTRY_STORAGE_DELETE_ENABLED": "maybe"}, "storage.delete.enabled"),
        ({"REGISTRY_HTTP_ADDR": "5000"}, "http.addr"),
        ({"REGISTRY_HTTP_WORKERS": "-1"}, "http.workers"),
        ({"REGISTRY_STORAGE": "gcs"}, "storage"),
        ({"REGISTRY_STORAGE_S3_BUCKET": "b"}, "storage"),
    ],
)
def test_invalid_env_values_name_the_key(tmp_path: Path, environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, MINIMAL, environ)
    assert caught.value.key == key


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "file not found"),
        ("version: [0.1\n", "not valid YAML"),
        ("- version: 0.1\n", "expected a mapping at the top level, got list"),
        ("", "got NoneType"),
        ("just a string", "got str"),
        (b"\xff\xfe\x00", "cannot read"),
    ],
)
def test_unloadable_file(tmp_path: Path, content: str | bytes | None, fragment: str) -> None:
    path = tmp_path / "config.yml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), {})
    assert caught.value.key == "config"
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^config: cannot read"):
        load_config(str(tmp_path), {})


def test_full_valid_config(tmp_path: Path) -> None:
    text = MINIMAL + (
        "  delete:\n    enabled: true\n  redirect:\n    disable: true\n"
        "  maintenance:\n    uploadpurging:\n      enabled: false\n      age: 10m\n"
        "      interval: 30s\n      dryrun: true\n"
        "log:\n  level: ERROR\n  formatter: json\n  accesslog:\n    disabled: true\n"
        "http:\n  addr: localhost:5000\n  host: https://registry.example.com\n  prefix: /my/nested/registry/\n"
        "  relativeurls: true\n  secret: s3cr3t\n  tls:\n    certificate: /c.pem\n    key: /k.pem\n"
        "  headers:\n    Strict-Transport-Security: max-age=63072000\n    X-Two: [a, b]\n  workers: 3\n"
        "database:\n  url: postgresql+asyncpg://registry@db/registry\n"
        "auth: none\n"
    )
    config = load(tmp_path, text)
    assert config.storage.delete_enabled and config.storage.redirect_disabled
    assert config.storage.upload_purging == {"enabled": False, "age": 600.0, "interval": 30.0, "dryrun": True}
    assert (config.log_level, config.log_formatter, config.log_accesslog_disabled) == ("error", "json", True)
    assert config.http.host == "https://registry.example.com"
    assert config.http.prefix == "/my/nested/registry"
    assert config.http.relativeurls is True
    assert config.http.secret == "s3cr3t"
    assert config.http.tls == {"certificate": "/c.pem", "key": "/k.pem"}
    assert config.http.headers == {"Strict-Transport-Security": ["max-age=63072000"], "X-Two": ["a", "b"]}
    assert config.workers == 3
    assert config.database_url == "postgresql+asyncpg://registry@db/registry"
    assert config.auth == {"none": {}}


def test_unix_socket(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL + "http:\n  net: unix\n  addr: /run/registry.sock\n")
    assert (config.http.net, config.http.addr) == ("unix", "/run/registry.sock")


def test_storage_as_string_and_empty_sections(tmp_path: Path) -> None:
    config = load(tmp_path, "version: 0.1\nstorage: inmemory\nhttp:\nlog:\n")
    assert (config.storage.driver, config.storage.params) == ("inmemory", {})
    assert config.http.addr == "127.0.0.1:5000"


def test_filesystem_without_rootdirectory_uses_distribution_default(tmp_path: Path) -> None:
    config = load(tmp_path, "version: 0.1\nstorage:\n  filesystem:\n")
    assert config.storage.params == {"rootdirectory": "/var/lib/registry"}


def test_relative_rootdirectory_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load(tmp_path, MINIMAL.replace("/srv/registry", "store"))
    assert config.storage.params["rootdirectory"] == str(tmp_path / "store")


def test_s3_params_pass_through(tmp_path: Path) -> None:
    text = (
        "version: 0.1\nstorage:\n  s3:\n    bucket: b\n    region: eu-west-1\n    regionendpoint: http://minio:9000\n"
    )
    config = load(tmp_path, text)
    assert config.storage.params == {"bucket": "b", "region": "eu-west-1", "regionendpoint": "http://minio:9000"}
    assert config.database_url == "sqlite+aiosqlite:////var/lib/registry/registry.db"  # wherever it starts from


def test_deprecated_loglevel(tmp_path: Path) -> None:
    assert load(tmp_path, MINIMAL + "loglevel: debug\n").log_level == "debug"
    assert load(tmp_path, MINIMAL + "loglevel: debug\nlog:\n  level: error\n").log_level == "error"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("", ""), ("/", ""), ("registry", "/registry"), ("/registry/", "/registry"), ("//a//b/", "/a/b")],
)
def test_prefix_normalisation(prefix: str, expected: str) -> None:
    assert normalize_prefix(prefix) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("168h", 604800.0),
        ("24h", 86400.0),
        ("10m", 600.0),
        ("30s", 30.0),
        ("1h30m", 5400.0),
        ("2h10m5s", 7805.0),
        ("1.5h", 5400.0),
        ("300ms", 0.3),
        ("0", 0.0),
        ("-1m", -60.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "h", "10x", "1 h", "1h 30m", "-", "++1s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        (":5000", ("0.0.0.0", 5000)),
        ("127.0.0.1:5000", ("127.0.0.1", 5000)),
        ("localhost:80", ("localhost", 80)),
        ("[::1]:5000", ("::1", 5000)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
    ],
)
def test_listen_host_port(addr: str, expected: tuple[str, int]) -> None:
    assert listen_host_port(addr) == expected


@pytest.mark.parametrize("addr", ["", "abc", "5000", "host:", "host:port", ":0", ":65536", "a b:5000", ":٥٠٠٠"])
def test_listen_host_port_rejects(addr: str) -> None:
    with pytest.raises(ConfigError) as caught:
        listen_host_port(addr)
    assert caught.value.key == "http.addr"


@pytest.mark.parametrize(
    "given", ["sqlite:////var/lib/registry/registry.db", "postgres://registry@db/registry?ssl=require"]
)
def test_database_url_is_kept_as_given(tmp_path: Path, given: str) -> None:
    """``registry.db.urls.resolve`` alone reads it (tests/db/test_urls.py)."""
    config = load(tmp_path, MINIMAL + f"database:\n  url: {given}\n")
    assert config.database_url == given


def test_debug_and_health_sections(tmp_path: Path) -> None:
    text = MINIMAL + (
        "http:\n  debug:\n    addr: 127.0.0.1:5001\n    prometheus:\n      enabled: true\n      path: /prom\n"
        "health:\n  storagedriver:\n    enabled: true\n    interval: 2s\n  database:\n    enabled: true\n"
        "    threshold: 2\n  file:\n    - file: /srv/out-of-rotation\n"
    )
    config = load(tmp_path, text, {"REGISTRY_HEALTH_STORAGEDRIVER_THRESHOLD": "5"})
    assert config.http.debug == DebugConfig(addr="127.0.0.1:5001", prometheus=True, path="/prom")
    assert config.http.debug.metrics
    assert config.health.storagedriver == CheckConfig(enabled=True, interval=2.0, threshold=5)
    assert config.health.database == CheckConfig(enabled=True, interval=10.0, threshold=2)
    assert config.health.file == (FileCheckConfig(file="/srv/out-of-rotation"),)
    assert config.ignored_sections == ()


def test_debug_and_health_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL + "http:\n  debug:\n    prometheus:\n      enabled: true\n")
    assert config.http.debug == DebugConfig(addr=None, prometheus=True, path="/metrics")
    assert not config.http.debug.metrics, "no debug server, no metrics (as distribution)"
    assert config.health.storagedriver == config.health.database == CheckConfig()


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("http:\n  debug:\n    addr: 5001\n", "http.debug.addr", "host:port"),
        ("http:\n  debug:\n    prometheus:\n      path: metrics\n", "http.debug.prometheus.path", "/metrics"),
        ("http:\n  debug:\n    prometheus:\n      path: /debug/health\n", "http.debug.prometheus.path", ""),
        ("http:\n  debug:\n    prometheus:\n      enabled: sure\n", "http.debug.prometheus.enabled", "true"),
        ("health:\n  storagedriver:\n    threshold: -1\n", "health.storagedriver.threshold", "negative"),
        ("health:\n  database:\n    interval: soon\n", "health.database.interval", "duration"),
        ("health:\n  storagedriver:\n    enabled: 1\n", "health.storagedriver.enabled", "true or false"),
    ],
)
def test_debug_and_health_mistakes(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, MINIMAL + text)
    assert caught.value.key == key
    assert fragment in caught.value.message
