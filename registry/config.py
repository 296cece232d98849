"""Distribution's ``config.yml`` (version 0.1) with its ``REGISTRY_*`` environment overrides, plus our own keys
(``database.url``, ``http.workers``). Env vars are matched against known key paths case-insensitively, in lexical
order; unknown ones land in ``Config.ignored_env``. Sections we do not implement and unknown keys land in
``Config.ignored_sections``. Defaults follow distribution (delete disabled, upload purging 168h/24h) except
``http.addr`` (127.0.0.1:5000) and, without a file, filesystem storage in ``./data``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from registry.config_schema import (
    DEFAULT_ADDR,
    DEFAULT_TRUSTED_PROXIES,
    SCHEMA,
    STORAGE,
    SUPPORTED_VERSION,
    TLS,
    apply_env,
    listen_host_port,
    normalize_prefix,
)
from registry.forwarded import TrustedProxies
from registry.settings import ConfigError, Kind, duration_value, ignored_keys, parse_duration, show
from storage_backends import BACKENDS, parameters
from storage_backends.filesystem import DEFAULT_ROOT as FILESYSTEM_DEFAULT_ROOT

DRIVERS = tuple(BACKENDS)
OWNED = ("storage", "version", "loglevel", "log", "http", "database", "health")  # others: their modules read them
__all__ = ["ConfigError", "duration_value", "listen_host_port", "normalize_prefix", "parse_duration"]


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


@dataclass(frozen=True, kw_only=True)
class FileCheckConfig(CheckConfig):
    """``health.file``: failing while ``file`` exists (distribution's way to take a replica out of rotation)."""

    file: str
    enabled: bool = True


@dataclass(frozen=True, kw_only=True)
class HttpCheckConfig(CheckConfig):
    """``health.http``: failing when a HEAD of ``uri`` answers another status or none within ``timeout``."""

    uri: str
    headers: dict[str, list[str]] = field(default_factory=dict)
    statuscode: int = 200
    timeout: float | None = None
    enabled: bool = True


@dataclass(frozen=True, kw_only=True)
class TcpCheckConfig(CheckConfig):
    """``health.tcp``: failing when a connection to ``addr`` (host:port) is not made within ``timeout``."""

    addr: str
    timeout: float | None = None
    enabled: bool = True


@dataclass(frozen=True)
class HealthConfig:
    storagedriver: CheckConfig = CheckConfig()
    database: CheckConfig = CheckConfig()
    file: tuple[FileCheckConfig, ...] = ()
    http: tuple[HttpCheckConfig, ...] = ()
    tcp: tuple[TcpCheckConfig, ...] = ()


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


# --- building the typed config from the table's values ---


def _build(raw: dict[str, Any], ignored_env: tuple[str, ...]) -> Config:
    values = {name: _read(raw, name) for name in OWNED}
    storage = _storage_config(raw, values["storage"])
    workers = values["http"]["workers"]
    if workers > 1 and storage.driver == "inmemory":
        raise ConfigError("http.workers", f"the inmemory storage driver needs a single worker, got {workers}")
    log = values["log"]
    return Config(
        version=_version(values["version"]),
        log_level=log["level"] if _given(raw, "log", "level") else values["loglevel"],
        log_accesslog_disabled=log["accesslog"]["disabled"],
        log_formatter=log["formatter"],
        storage=storage,
        http=_http_config(values["http"], raw.get("http") or {}),
        database_url=_database_url(values["database"]["url"], storage),
        workers=workers,
        auth=_auth(raw.get("auth")),
        ignored_sections=tuple(ignored_keys(raw, SCHEMA)),
        raw=raw,
        log_fields=log["fields"] or {},
        ignored_env=ignored_env,
        health=_health_config(values["health"]),
    )


def _health_config(values: dict[str, Any]) -> HealthConfig:
    """The checks, each named as distribution names it in ``/debug/health`` (a file's path, a uri, an addr): one
    name, one check."""
    config = HealthConfig(
        storagedriver=CheckConfig(**values["storagedriver"]),
        database=CheckConfig(**values["database"]),
        file=tuple(FileCheckConfig(**check) for check in values["file"]),
        http=tuple(HttpCheckConfig(**{**check, "headers": check["headers"] or {}}) for check in values["http"]),
        tcp=tuple(TcpCheckConfig(**check) for check in values["tcp"]),
    )
    seen: set[str] = set()
    for kind, key in (("file", "file"), ("http", "uri"), ("tcp", "addr")):
        for index, check in enumerate(getattr(config, kind)):
            name = getattr(check, key)
            if name in seen:
                raise ConfigError(f"health.{kind}[{index}].{key}", f"{name!r} is checked twice (one name, one check)")
            seen.add(name)
    return config


def _given(raw: dict[str, Any], section: str, key: str) -> bool:
    node = raw.get(section)
    return isinstance(node, dict) and node.get(key) is not None


def _read(raw: dict[str, Any], name: str) -> Any:
    """A section of the table, typed; the storage driver's own section is read by ``_driver``."""
    value = raw.get(name)
    if name == "storage" and isinstance(value, dict):
        value = {key: item for key, item in value.items() if key in STORAGE.keys}
    schema = SCHEMA.keys[name]
    assert isinstance(schema, Kind)
    return schema.read(value, name)


def _version(version: str | None) -> str:
    if version != SUPPORTED_VERSION:
        got = "it is missing" if version is None else f"got {version!r}"
        raise ConfigError("version", f"expected {SUPPORTED_VERSION!r} (distribution's only version), {got}")
    return version


def _storage_config(raw: dict[str, Any], values: dict[str, Any]) -> StorageConfig:
    driver, params = _driver(raw)
    maintenance = values["maintenance"]
    return StorageConfig(
        driver=driver,
        params=params,
        delete_enabled=values["delete"]["enabled"],
        redirect_disabled=values["redirect"]["disable"],
        upload_purging=maintenance["uploadpurging"],
        read_only=maintenance["readonly"]["enabled"],
        gc=GcConfig(**values["gc"]),
    )


def _driver(raw: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    section = raw.get("storage")
    section = {} if section is None else section
    if not isinstance(section, dict):
        raise ConfigError("storage", f"expected a mapping with one driver, got {show(section)}")
    drivers = STORAGE.chosen(section)
    if len(drivers) != 1:
        got = ", ".join(map(str, drivers)) or "none"
        raise ConfigError("storage", f"expected exactly one driver ({', '.join(DRIVERS)}), got {got}")
    driver = drivers[0]
    declared = parameters(driver) if isinstance(driver, str) else None
    if declared is None:
        raise ConfigError("storage", f"unsupported driver {driver!r}, expected one of {', '.join(DRIVERS)}")
    return driver, declared.read(section[driver], f"storage.{driver}", given_only=True)


def _http_config(values: dict[str, Any], raw: dict[str, Any]) -> HttpConfig:
    net, addr = values["net"], values["addr"]
    if addr is None:
        addr = DEFAULT_ADDR if net == "tcp" else ""
    if net == "tcp":
        listen_host_port(addr)
    elif not addr:
        raise ConfigError("http.addr", "expected a socket path when http.net is unix")
    debug = values["debug"]
    return HttpConfig(
        addr=addr,
        host=values["host"],
        prefix=values["prefix"],
        relativeurls=values["relativeurls"],
        tls=TLS.read(raw.get("tls"), "http.tls", given_only=True) or None,  # as given: cli reads its defaults
        secret=values["secret"],
        headers=values["headers"] or {},
        net=net,
        draintimeout=values["draintimeout"],
        trustedproxies=values["trustedproxies"],
        debug=DebugConfig(debug["addr"], debug["prometheus"]["enabled"], debug["prometheus"]["path"]),
    )


def _auth(section: Any) -> dict[str, Any] | None:
    if section is None or section == {}:
        return None
    if not isinstance(section, dict) or len(section) != 1:
        raise ConfigError("auth", f"expected exactly one provider (htpasswd, token, silly, none), got {show(section)}")
    ((provider, params),) = section.items()
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise ConfigError(f"auth.{provider}", f"expected a mapping, got {show(params)}")
    return {str(provider): params}


def _database_url(url: str | None, storage: StorageConfig) -> str:
    """The URL as configured, or the default: ``registry.db.urls.resolve`` alone reads it (driver, in-memory)."""
    if url:
        return url
    if storage.driver == "inmemory":
        return "sqlite+aiosqlite:///:memory:"  # nothing persists with inmemory storage, so neither does metadata
    # beside the blobs on a filesystem; for S3 a fixed place, never the working directory (a server started from
    # another one would show an empty catalog): the database records its bucket and refuses another
    data_dir = storage.params["rootdirectory"] if storage.driver == "filesystem" else FILESYSTEM_DEFAULT_ROOT
    return f"sqlite+aiosqlite:///{data_dir}/registry.db"
