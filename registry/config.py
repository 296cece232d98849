"""Distribution's ``config.yml`` (version 0.1) with its ``REGISTRY_*`` environment overrides, plus our own keys
(``database.url``, ``http.workers``). Env vars are matched against known key paths case-insensitively, in lexical
order; unknown ones land in ``Config.ignored_env``. Sections we do not implement and unknown keys land in
``Config.ignored_sections``. Defaults follow distribution (delete disabled, upload purging 168h/24h) except
``http.addr`` (127.0.0.1:5000) and, without a file, filesystem storage in ``./data``.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import yaml

from registry.config_schema import NON_DRIVER_KEYS, SCHEMA, apply_env, ignored_keys
from registry.forwarded import TrustedProxies

SUPPORTED_VERSION = "0.1"
DRIVERS = ("filesystem", "inmemory", "s3")
LOG_LEVELS = ("error", "warn", "info", "debug")
LOG_FORMATTERS = ("text", "logfmt", "json", "logstash")  # logfmt: ours; the others distribution's
DEFAULT_ADDR = "127.0.0.1:5000"
DEFAULT_TRUSTED_PROXIES = ("127.0.0.1", "::1")  # uvicorn's forwarded_allow_ips default: a proxy on this host
FILESYSTEM_DEFAULT_ROOT = "/var/lib/registry"  # distribution's filesystem driver default

_MISSING = object()
_T = TypeVar("_T", bool, int)


class ConfigError(Exception):
    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = " ".join(message.split())
        super().__init__(f"{key}: {self.message}")


@dataclass(frozen=True)
class GcConfig:
    """``storage.gc``: the online collector. A dereferenced blob or manifest is reviewed ``delay`` seconds later; a
    blob just uploaded, mounted or HEADed is protected for ``lease``; each worker looks for due reviews every
    ``interval``; untagged manifests go ``untagged`` seconds after they lost their last tag (None: never)."""

    enabled: bool = True
    delay: float = 24 * 3600.0
    lease: float = 3600.0
    interval: float = 30.0
    untagged: float | None = None
    dryrun: bool = False


@dataclass(frozen=True)
class StorageConfig:
    driver: str
    params: dict[str, Any]
    delete_enabled: bool
    redirect_disabled: bool
    upload_purging: dict[str, Any]  # enabled, dryrun: bool; age, interval: seconds (float)
    read_only: bool = False  # storage.maintenance.readonly.enabled: pulls only, every write is 405 UNSUPPORTED
    gc: GcConfig = GcConfig()


@dataclass(frozen=True)
class DebugConfig:
    """``http.debug``: distribution's debug server on ``addr`` (none when None), with ``/debug/health`` and, when
    ``prometheus``, the metrics at ``path`` (``registry.events.debug``)."""

    addr: str | None = None
    prometheus: bool = False
    path: str = "/metrics"

    @property
    def metrics(self) -> bool:
        return self.addr is not None and self.prometheus


@dataclass(frozen=True)
class CheckConfig:
    """A periodic health check (``health.storagedriver``; ours: ``health.database``), every ``interval`` seconds;
    failing after ``threshold`` failures in a row (0: the first one), as distribution."""

    enabled: bool = False
    interval: float = 10.0
    threshold: int = 0


@dataclass(frozen=True)
class HealthConfig:
    storagedriver: CheckConfig = CheckConfig()
    database: CheckConfig = CheckConfig()


@dataclass(frozen=True)
class HttpConfig:
    addr: str
    host: str | None
    prefix: str
    relativeurls: bool
    tls: dict[str, Any] | None
    secret: str | None
    headers: dict[str, list[str]]
    net: str = "tcp"
    draintimeout: float | None = None
    trustedproxies: TrustedProxies = TrustedProxies.parse(DEFAULT_TRUSTED_PROXIES)
    debug: DebugConfig = DebugConfig()


@dataclass(frozen=True)
class Config:
    version: str
    log_level: str
    log_accesslog_disabled: bool
    log_formatter: str
    storage: StorageConfig
    http: HttpConfig
    database_url: str
    workers: int
    auth: dict[str, Any] | None
    ignored_sections: tuple[str, ...]
    raw: dict[str, Any]
    log_fields: dict[str, Any] = field(default_factory=dict)
    ignored_env: tuple[str, ...] = ()
    health: HealthConfig = HealthConfig()


def load_config(path: str | None, environ: Mapping[str, str] | None = None) -> Config:
    if path is None:
        return default_config(environ)
    return _finish(_read_file(path), environ)


def default_config(environ: Mapping[str, str] | None = None) -> Config:
    storage = {"filesystem": {"rootdirectory": os.path.abspath("data")}}
    return _finish({"version": SUPPORTED_VERSION, "storage": storage, "http": {"addr": DEFAULT_ADDR}}, environ)


def listen_host_port(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not re.fullmatch(r"[0-9]{1,5}", port) or not 1 <= int(port) <= 65535:
        raise ConfigError("http.addr", f"expected host:port with a port in 1..65535, got {addr!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError("http.addr", f"an IPv6 host must be in brackets, like [::1]:5000, got {addr!r}")
    if re.search(r"[\s/\[\]]", host):
        raise ConfigError("http.addr", f"expected host:port, got {addr!r}")
    return host or "0.0.0.0", int(port)


_DURATION_PART = r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)"
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` syntax ("168h", "1h30m", "300ms"), in seconds."""
    sign = -1.0 if text.startswith("-") else 1.0
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    if not body or not re.fullmatch(f"(?:{_DURATION_PART})+", body):
        raise ValueError(f"invalid duration {text!r}, expected e.g. '24h', '10m', '30s'")
    return sign * sum(float(num) * _DURATION_UNITS[unit] for num, unit in re.findall(_DURATION_PART, body))


def normalize_prefix(prefix: str) -> str:
    if re.search(r"[\s?#]", prefix):
        raise ConfigError("http.prefix", f"expected a URL path like /registry/, got {prefix!r}")
    segments = [segment for segment in prefix.split("/") if segment]
    return "/" + "/".join(segments) if segments else ""


# --- reading and environment overrides ---


def _read_file(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config", f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"cannot read {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise ConfigError("config", f"{path} is not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _finish(raw: dict[str, Any], environ: Mapping[str, str] | None) -> Config:
    merged = copy.deepcopy(raw)
    ignored_env = apply_env(merged, os.environ if environ is None else environ)
    for key in ("storage", "auth"):  # the short forms `storage: inmemory`, `auth: none`
        if isinstance(merged.get(key), str):
            merged[key] = {merged[key]: {}}
    return _build(merged, ignored_env)


# --- typed access to the merged mapping ---


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _lookup(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    parts = key.split(".")
    for index, part in enumerate(parts):
        if node is None:
            return _MISSING
        if not isinstance(node, dict):
            raise ConfigError(".".join(parts[:index]), f"expected a mapping, got {_show(node)}")
        node = node.get(part)
    return _MISSING if node is None else node


def _opt_str(raw: dict[str, Any], key: str) -> str | None:
    value = _lookup(raw, key)
    if value is _MISSING:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    raise ConfigError(key, f"expected a string, got {_show(value)}")


def _str(raw: dict[str, Any], key: str, default: str) -> str:
    value = _opt_str(raw, key)
    return default if value is None else value


def _typed(raw: dict[str, Any], key: str, default: _T) -> _T:
    value = _lookup(raw, key)
    if value is _MISSING:
        return default
    if type(value) is not type(default):  # exact: a bool is no integer here
        expected = "true or false" if isinstance(default, bool) else "an integer"
        raise ConfigError(key, f"expected {expected}, got {_show(value)}")
    return value


def _duration(raw: dict[str, Any], key: str, default: str | None) -> float | None:
    value = _lookup(raw, key)
    return duration_value(default if value is _MISSING else value, key)


def duration_value(value: Any, key: str) -> float | None:
    """A duration setting (``24h``, ``1h30m``, ``0``) in seconds; None for none; ConfigError naming ``key``."""
    if value is None or (type(value) is int and value == 0):
        return None if value is None else 0.0
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a duration like '24h', got {_show(value)}")
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None
    if seconds < 0:
        raise ConfigError(key, f"must not be negative, got {value!r}")
    return seconds


def _mapping(raw: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = _lookup(raw, key)
    if value is _MISSING:
        return None
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a mapping, got {_show(value)}")
    return value


def _choice(raw: dict[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = _str(raw, key, default).lower()
    if value not in choices:
        raise ConfigError(key, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


# --- building the typed config ---


def _build(raw: dict[str, Any], ignored_env: tuple[str, ...]) -> Config:
    storage = _storage_config(raw)
    workers = _typed(raw, "http.workers", 1)
    if workers < 1:
        raise ConfigError("http.workers", f"must be at least 1, got {workers}")
    if workers > 1 and storage.driver == "inmemory":
        raise ConfigError("http.workers", f"the inmemory storage driver needs a single worker, got {workers}")
    return Config(
        version=_version(raw),
        log_level=_log_level(raw),
        log_accesslog_disabled=_typed(raw, "log.accesslog.disabled", False),
        log_formatter=_choice(raw, "log.formatter", LOG_FORMATTERS, "text"),
        storage=storage,
        http=_http_config(raw),
        database_url=_database_url(raw, storage),
        workers=workers,
        auth=_auth(raw),
        ignored_sections=tuple(ignored_keys(raw, SCHEMA)),
        raw=raw,
        log_fields=_mapping(raw, "log.fields") or {},
        ignored_env=ignored_env,
        health=HealthConfig(_check(raw, "health.storagedriver"), _check(raw, "health.database")),
    )


def _version(raw: dict[str, Any]) -> str:
    version = _opt_str(raw, "version")
    if version != SUPPORTED_VERSION:
        got = "it is missing" if version is None else f"got {version!r}"
        raise ConfigError("version", f"expected {SUPPORTED_VERSION!r} (distribution's only version), {got}")
    return version


def _log_level(raw: dict[str, Any]) -> str:
    key = "log.level" if _lookup(raw, "log.level") is not _MISSING else "loglevel"  # loglevel: deprecated
    level = _str(raw, key, "info").lower()
    level = "warn" if level == "warning" else level
    if level not in LOG_LEVELS:
        raise ConfigError(key, f"expected one of {', '.join(LOG_LEVELS)}, got {level!r}")
    return level


def _storage_config(raw: dict[str, Any]) -> StorageConfig:
    driver, params = _driver(raw)
    base = "storage.maintenance.uploadpurging"
    purging = {
        "enabled": _typed(raw, f"{base}.enabled", True),
        "age": _duration(raw, f"{base}.age", "168h"),
        "interval": _duration(raw, f"{base}.interval", "24h"),
        "dryrun": _typed(raw, f"{base}.dryrun", False),
    }
    return StorageConfig(
        driver=driver,
        params=params,
        delete_enabled=_typed(raw, "storage.delete.enabled", False),
        redirect_disabled=_typed(raw, "storage.redirect.disable", False),
        upload_purging=purging,
        read_only=_typed(raw, "storage.maintenance.readonly.enabled", False),
        gc=_gc_config(raw),
    )


def _gc_config(raw: dict[str, Any]) -> GcConfig:
    default = GcConfig()
    untagged = _lookup(raw, "storage.gc.untagged")
    return GcConfig(
        enabled=_typed(raw, "storage.gc.enabled", default.enabled),
        delay=_duration(raw, "storage.gc.delay", "24h") or 0.0,
        lease=_duration(raw, "storage.gc.lease", "1h") or 0.0,
        interval=_duration(raw, "storage.gc.interval", "30s") or default.interval,
        untagged=None
        if untagged in (_MISSING, False, "false", "never")
        else _duration(raw, "storage.gc.untagged", None),
        dryrun=_typed(raw, "storage.gc.dryrun", default.dryrun),
    )


def _driver(raw: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    section = _lookup(raw, "storage")
    section = {} if section is _MISSING else section
    if not isinstance(section, dict):
        raise ConfigError("storage", f"expected a mapping with one driver, got {_show(section)}")
    drivers = [key for key in section if key not in NON_DRIVER_KEYS]
    if len(drivers) != 1:
        got = ", ".join(map(str, drivers)) or "none"
        raise ConfigError("storage", f"expected exactly one driver ({', '.join(DRIVERS)}), got {got}")
    driver = drivers[0]
    if driver not in DRIVERS:
        raise ConfigError("storage", f"unsupported driver {driver!r}, expected one of {', '.join(DRIVERS)}")
    params = {} if section[driver] is None else section[driver]
    if not isinstance(params, dict):
        raise ConfigError(f"storage.{driver}", f"expected a mapping, got {_show(params)}")
    return driver, _check_params(driver, dict(params))


def _check_params(driver: str, params: dict[str, Any]) -> dict[str, Any]:
    required = {"filesystem": ("rootdirectory",), "s3": ("bucket", "region")}.get(driver, ())
    if driver == "filesystem":
        params.setdefault("rootdirectory", FILESYSTEM_DEFAULT_ROOT)
    for name in required:
        value = params.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = params[name] = str(value)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"storage.{driver}.{name}", f"expected a non-empty string, got {_show(value)}")
    if driver == "filesystem":
        params["rootdirectory"] = os.path.abspath(params["rootdirectory"])
    return params


def _http_config(raw: dict[str, Any]) -> HttpConfig:
    net = _choice(raw, "http.net", ("tcp", "unix"), "tcp")
    addr = _str(raw, "http.addr", DEFAULT_ADDR if net == "tcp" else "")
    if net == "tcp":
        listen_host_port(addr)
    elif not addr:
        raise ConfigError("http.addr", "expected a socket path when http.net is unix")
    return HttpConfig(
        addr=addr,
        host=_host(raw),
        prefix=normalize_prefix(_str(raw, "http.prefix", "")),
        relativeurls=_typed(raw, "http.relativeurls", False),
        tls=_mapping(raw, "http.tls") or None,
        secret=_opt_str(raw, "http.secret"),
        headers=_headers(raw),
        net=net,
        draintimeout=_duration(raw, "http.draintimeout", None),
        trustedproxies=_trusted_proxies(raw),
        debug=_debug(raw),
    )


def _debug(raw: dict[str, Any]) -> DebugConfig:
    addr = _opt_str(raw, "http.debug.addr") or None
    if addr is not None:
        try:
            listen_host_port(addr)
        except ConfigError as exc:
            raise ConfigError("http.debug.addr", exc.message) from None
    path = _str(raw, "http.debug.prometheus.path", "/metrics")
    if not path.startswith("/") or re.search(r"[\s?#]", path) or path.rstrip("/") in ("", "/debug/health"):
        raise ConfigError("http.debug.prometheus.path", f"expected a URL path like /metrics, got {path!r}")
    return DebugConfig(addr, _typed(raw, "http.debug.prometheus.enabled", False), path)


def _check(raw: dict[str, Any], key: str) -> CheckConfig:
    threshold = _typed(raw, f"{key}.threshold", 0)
    if threshold < 0:
        raise ConfigError(f"{key}.threshold", f"must not be negative, got {threshold}")
    interval = _duration(raw, f"{key}.interval", "10s") or CheckConfig.interval  # 0: the default, as distribution
    return CheckConfig(_typed(raw, f"{key}.enabled", False), interval, threshold)


def _trusted_proxies(raw: dict[str, Any]) -> TrustedProxies:
    """A list, or one string of entries separated by commas or spaces (``REGISTRY_HTTP_TRUSTEDPROXIES``)."""
    key = "http.trustedproxies"
    value = _lookup(raw, key)
    if value is _MISSING:
        return TrustedProxies.parse(DEFAULT_TRUSTED_PROXIES)
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ConfigError(key, f"expected a list of addresses, networks or *, got {_show(value)}")
    try:
        return TrustedProxies.parse(items)
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None


def _host(raw: dict[str, Any]) -> str | None:
    host = _opt_str(raw, "http.host")
    if not host:
        return None
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError("http.host", f"expected an absolute URL like https://registry.example.com, got {host!r}")
    return host.rstrip("/")


def _headers(raw: dict[str, Any]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in (_mapping(raw, "http.headers") or {}).items():
        items = value if isinstance(value, list) else [value]
        texts = [_opt_str({"v": item}, "v") if isinstance(item, str | int | float) else None for item in items]
        if any(text is None or "\r" in text or "\n" in text for text in texts):
            raise ConfigError(f"http.headers.{name}", f"expected a string or a list of strings, got {_show(value)}")
        headers[str(name)] = cast(list[str], texts)
    return headers


def _auth(raw: dict[str, Any]) -> dict[str, Any] | None:
    section = _lookup(raw, "auth")
    if section is _MISSING or section == {}:
        return None
    if not isinstance(section, dict) or len(section) != 1:
        raise ConfigError("auth", f"expected exactly one provider (htpasswd, token, silly, none), got {_show(section)}")
    ((provider, params),) = section.items()
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise ConfigError(f"auth.{provider}", f"expected a mapping, got {_show(params)}")
    return {str(provider): params}


# a URL without a driver, or with a synchronous one, gets the async driver we ship for its database
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
}


def _async_driver(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{_ASYNC_DRIVERS.get(scheme.lower(), scheme)}://{rest}"


def _database_url(raw: dict[str, Any], storage: StorageConfig) -> str:
    url = _opt_str(raw, "database.url")
    if url and "://" not in url:
        raise ConfigError("database.url", "expected an SQLAlchemy URL like sqlite+aiosqlite:////abs/path/registry.db")
    if url:
        return _async_driver(url)
    if storage.driver == "inmemory":
        return "sqlite+aiosqlite:///:memory:"  # nothing persists with inmemory storage, so neither does metadata
    # beside the blobs on a filesystem; for S3 a fixed place, never the working directory (a server started from
    # another one would show an empty catalog): the database records its bucket and refuses another
    data_dir = storage.params["rootdirectory"] if storage.driver == "filesystem" else FILESYSTEM_DEFAULT_ROOT
    return f"sqlite+aiosqlite:///{data_dir}/registry.db"
