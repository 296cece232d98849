"""The keys of distribution's ``config.yml`` as we read them, declared once (``registry.settings`` has the kinds),
and its ``REGISTRY_*`` environment overrides. A storage driver declares its ``storage.<driver>`` section beside its
code (``storage_backends``: ``PARAMETERS``), an auth provider its ``auth.<provider>`` section in
``registry.auth.settings``; the module that reads ``retention`` and ``immutable`` (``registry.gc.policies``),
``notifications`` (``registry.events.endpoints``), ``proxy`` and ``proxies`` (``registry.proxy.config``),
``validation`` (``registry.content.validation``), ``ui`` (``registry.ui.settings``) declares them.

An env var's name is matched against the declared keys case-insensitively, longest key first (so keys containing
``_`` work), in lexical order like distribution (``REGISTRY_STORAGE`` before ``REGISTRY_STORAGE_S3_*``); below a
free-form key (a driver's unknown parameter, a ``proxies`` prefix) its lower-cased name is the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import yaml

import storage_backends
from registry.content.validation import VALIDATION
from registry.events.endpoints import NOTIFICATIONS
from registry.forwarded import TrustedProxies
from registry.gc.policies import IMMUTABLE, RETENTION
from registry.proxy.config import PROXIES, PROXY
from registry.settings import (
    IGNORED,
    NEVER,
    Bool,
    Choice,
    ConfigError,
    Duration,
    Ignored,
    Int,
    Items,
    Kind,
    OneOf,
    Open,
    Section,
    Str,
    Strings,
    Text,
)
from registry.settings_http import Headers, Url
from registry.ui.settings import UI

ENV_PREFIX = "REGISTRY_"
CONFIG_ENV = "REGISTRY_CONFIGURATION_PATH"  # names the file (registry.cli), not a key
SUPPORTED_VERSION = "0.1"
LOG_LEVELS = ("error", "warn", "info", "debug")
LOG_FORMATTERS = ("text", "logfmt", "json", "logstash")  # logfmt: ours; the others distribution's
DEFAULT_ADDR = "127.0.0.1:5000"
DEFAULT_TRUSTED_PROXIES = ("127.0.0.1", "::1")  # uvicorn's forwarded_allow_ips default: a proxy on this host
MINIMUM_TLS = ("tls1.0", "tls1.1", "tls1.2")  # Python never offers less than TLS 1.2: the older ones are met too
HOUR = 3600.0
UNIMPLEMENTED = ("redis", "reporting", "middleware", "compatibility", "catalog", "policy")


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


def normalize_prefix(prefix: str) -> str:
    if re.search(r"[\s?#]", prefix):
        raise ConfigError("http.prefix", f"expected a URL path like /registry/, got {prefix!r}")
    segments = [segment for segment in prefix.split("/") if segment]
    return "/" + "/".join(segments) if segments else ""


def _listen_addr(addr: str) -> str | None:
    if addr:
        listen_host_port(addr)
    return addr or None


def _host(host: str) -> str | None:
    if not host:
        return None
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"expected an absolute URL like https://registry.example.com, got {host!r}")
    return host.rstrip("/")


def _metrics_path(path: str) -> str:
    if not path.startswith("/") or re.search(r"[\s?#]", path) or path.rstrip("/") in ("", "/debug/health"):
        raise ValueError(f"expected a URL path like /metrics, got {path!r}")
    return path


def _database_url(url: str) -> str:
    if url and "://" not in url:
        raise ValueError("expected an SQLAlchemy URL like sqlite+aiosqlite:////abs/path/registry.db")
    return url


def _status_code(code: int) -> int:
    if code == 0:
        return 200  # as distribution: none given is 200
    if not 100 <= code <= 599:
        raise ValueError(f"expected an HTTP status code like 200, got {code}")
    return code


def _dial_addr(addr: str) -> str:
    listen_host_port(addr)
    return addr


def _auth_provider(name: str) -> Section | None:
    from registry.auth.settings import PROVIDERS  # each provider declares its section beside its settings

    return PROVIDERS.get(name)


TLS = Section(  # http.tls, distribution's; any other key (letsencrypt) is refused rather than served without
    {
        **{"certificate": Str(), "key": Str(), "clientcas": Strings([])},
        "minimumtls": Choice(*MINIMUM_TLS, default="tls1.2"),
    },
    strict=True,
    unknown="not implemented yet; refusing to serve without it",
)
PERIOD = {"interval": Duration(10.0, zero=10.0), "threshold": Int(0, minimum=0)}  # every health check's
CHECK = Section({"enabled": Bool(False), **PERIOD})
HEALTH = Section(  # registry.events.health and health_checks; database is ours
    {
        **{"storagedriver": CHECK, "database": CHECK},
        "file": Items(Section({"file": Text(required=True), **PERIOD}, strict=True)),
        "http": Items(
            Section(
                {
                    **{"uri": Url(required=True), "headers": Headers(tokens=True)},
                    **{"statuscode": Int(200, check=_status_code), "timeout": Duration(None, zero=None), **PERIOD},
                },
                strict=True,
            )
        ),
        "tcp": Items(
            Section(
                {"addr": Text(required=True, check=_dial_addr), "timeout": Duration(None, zero=None), **PERIOD},
                strict=True,
            )
        ),
    }
)
STORAGE = OneOf(
    {
        "delete": Section({"enabled": Bool(False)}),
        "redirect": Section({"disable": Bool(False)}),
        "gc": Section(  # ours: the online garbage collector (registry.gc)
            {
                **{"enabled": Bool(True), "dryrun": Bool(False)},
                **{"delay": Duration(24 * HOUR), "lease": Duration(HOUR), "interval": Duration(30.0, zero=30.0)},
                "untagged": Duration(None, never=(*NEVER, 0, 0.0)),  # a bare 0 is false: never, as it always was
            }
        ),
        "maintenance": Section(
            {
                "uploadpurging": Section(
                    {
                        **{"enabled": Bool(True), "age": Duration(168 * HOUR)},
                        **{"interval": Duration(24 * HOUR), "dryrun": Bool(False)},
                    }
                ),
                "readonly": Section({"enabled": Bool(False)}),
            }
        ),
        **dict.fromkeys(("cache", "tag"), IGNORED),
    },
    storage_backends.parameters,
    "driver",
)
HTTP = Section(
    {
        **{"addr": Str(), "net": Choice("tcp", "unix", default="tcp"), "host": Str(check=_host)},
        **{"prefix": Str("", check=normalize_prefix), "secret": Str(), "relativeurls": Bool(False)},
        **{"draintimeout": Duration(), "workers": Int(1, minimum=1), "tls": TLS, "headers": Headers()},
        "trustedproxies": Strings(
            TrustedProxies.parse(DEFAULT_TRUSTED_PROXIES),
            split=True,
            check=TrustedProxies.parse,
            expected="a list of addresses, networks or *",
        ),
        "debug": Section(  # registry.events.debug
            {
                "addr": Str(check=_listen_addr),
                "prometheus": Section({"enabled": Bool(False), "path": Str("/metrics", check=_metrics_path)}),
            }
        ),
    }
)
LOG_LEVEL = Choice(*LOG_LEVELS, default="info", aliases={"warning": "warn"})
SCHEMA = Section(
    {
        **{"version": Str(), "loglevel": LOG_LEVEL},  # loglevel: distribution's deprecated log.level
        "log": Section(
            {
                **{"level": LOG_LEVEL, "formatter": Choice(*LOG_FORMATTERS, default="text")},
                **{"fields": Open(), "accesslog": Section({"disabled": Bool(False)})},
            }
        ),
        "storage": STORAGE,
        "http": HTTP,
        "database": Section({"url": Str(check=_database_url)}),  # ours
        "auth": OneOf({}, _auth_provider, "provider"),
        **{"retention": RETENTION, "immutable": IMMUTABLE},  # ours: registry.gc.policies
        "health": HEALTH,
        "notifications": NOTIFICATIONS,  # registry.events.endpoints
        **{"proxy": PROXY, "proxies": PROXIES},  # registry.proxy.config: distribution's, ours (upstreams by prefix)
        "validation": VALIDATION,  # registry.content.validation: distribution's manifests.indexes
        "ui": UI,  # ours: registry.ui.settings, the web UI
        **dict.fromkeys(UNIMPLEMENTED, IGNORED),
    }
)


# --- REGISTRY_* environment overrides ---

EnvPath = list[tuple[Any, "Kind | Ignored"]]


def apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> tuple[str, ...]:
    unknown: list[str] = []
    for name in sorted(environ):  # lexical, like distribution: REGISTRY_STORAGE before REGISTRY_STORAGE_S3_*
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in (ENV_PREFIX, CONFIG_ENV):
            continue
        path = _env_path(raw, SCHEMA, upper[len(ENV_PREFIX) :].split("_"))
        if path is None:
            unknown.append(name)
        else:
            _env_set(raw, path, environ[name])
    return tuple(unknown)


def _env_set(raw: dict[str, Any], path: EnvPath, text: str) -> None:
    node = raw
    for key, schema in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {child: {}} if isinstance(child, str) and isinstance(schema, OneOf) else {}
            node[key] = child
        node = child
    _assign(node, *path[-1], text)


def _descends(schema: Kind | Ignored) -> bool:
    return isinstance(schema, Section | Open | Ignored)


def _env_path(node: object, schema: Kind | Ignored, tokens: list[str]) -> EnvPath | None:
    """The keys and schema nodes an env var's tokens lead to; longest match first, so keys with "_" work."""
    mapping = node if isinstance(node, dict) else {}
    for n in range(len(tokens), 0, -1):
        key = _find_key(mapping, schema, "_".join(tokens[:n]))
        if key is None:
            continue
        child = schema.child(key) if isinstance(schema, Section) else Open()
        if n == len(tokens):
            return [(key, child)]
        if _descends(child):
            tail = _env_path(mapping.get(key), child, tokens[n:])
            if tail is not None:
                return [(key, child), *tail]
    return None


def _find_key(node: dict[Any, Any], schema: Kind | Ignored, wanted: str) -> Any:
    if isinstance(schema, Section):
        known = [key for key in schema.keys if key.upper() == wanted]
        if known or not (schema.strict or isinstance(schema.other, Kind)):
            return known[0] if known else None
    existing = [key for key in node if str(key).upper() == wanted]
    if existing:
        return existing[0]
    return wanted.lower() if "_" not in wanted else None


def _assign(node: dict[Any, Any], key: Any, schema: Kind | Ignored, text: str) -> None:
    value = _env_value(schema, text)
    if isinstance(schema, OneOf) and isinstance(value, str):  # REGISTRY_STORAGE=s3 switches the driver
        section = node.get(key)
        kept = {k: v for k, v in section.items() if k in schema.keys} if isinstance(section, dict) else {}
        value = {**kept, value: {}}
    node[key] = value


def _env_value(schema: Kind | Ignored, text: str) -> object:
    if not text:
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if isinstance(schema, Kind) and schema.text and not isinstance(value, str) else value
