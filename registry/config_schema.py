"""The shape of distribution's ``config.yml`` as we read it, and its ``REGISTRY_*`` environment overrides.

An env var's name is matched against the known key paths case-insensitively, longest key first (so keys containing
``_`` work), in lexical order like distribution (``REGISTRY_STORAGE`` before ``REGISTRY_STORAGE_S3_*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

ENV_PREFIX = "REGISTRY_"
NON_DRIVER_KEYS = frozenset({"delete", "redirect", "cache", "maintenance", "tag", "gc"})

# Schema kinds: a dict is a section; OPEN is a free-form mapping we use; IGNORED one we do not implement yet.
OPEN = "open"
IGNORED = "ignored"
UNIMPLEMENTED: tuple[str, ...] = ("redis", "reporting", "middleware")
UNIMPLEMENTED += ("validation", "compatibility", "catalog", "policy")
STORAGE_SCHEMA: dict[str, object] = {
    "delete": {"enabled": "bool"},
    "redirect": {"disable": "bool"},
    "gc": {  # ours: the online garbage collector (registry.gc)
        **dict.fromkeys(("enabled", "dryrun"), "bool"),
        **dict.fromkeys(("delay", "lease", "interval", "untagged"), "duration"),
    },
    "maintenance": {
        "uploadpurging": {"enabled": "bool", "age": "duration", "interval": "duration", "dryrun": "bool"},
        "readonly": {"enabled": "bool"},
    },
    **dict.fromkeys(("cache", "tag"), IGNORED),
    "*": OPEN,  # the driver section
}
HTTP_SCHEMA: dict[str, object] = {
    **dict.fromkeys(("addr", "net", "host", "prefix", "secret"), "str"),
    **{"relativeurls": "bool", "draintimeout": "duration", "workers": "int", "tls": OPEN, "headers": OPEN},
    "trustedproxies": "list",
    "debug": {"addr": "str", "prometheus": {"enabled": "bool", "path": "str"}},  # registry.events.debug
}
CHECK_SCHEMA: dict[str, object] = {"enabled": "bool", "interval": "duration", "threshold": "int"}
HEALTH_SCHEMA: dict[str, object] = {  # registry.events.health; database is ours
    "storagedriver": CHECK_SCHEMA,
    "database": CHECK_SCHEMA,
    **dict.fromkeys(("file", "http", "tcp"), IGNORED),
}
UPSTREAM_SCHEMA: dict[str, object] = {  # registry.proxy.config: distribution's proxy, and ours per prefix
    **dict.fromkeys(("remoteurl", "username", "password", "passwordfile", "namespace"), "str"),
    **{"ttl": "duration", "pushes": "bool"},
}
SCHEMA: dict[str, object] = {
    "version": "str",
    "loglevel": "str",
    "log": {"level": "str", "formatter": "str", "fields": OPEN, "accesslog": {"disabled": "bool"}},
    "storage": STORAGE_SCHEMA,
    "http": HTTP_SCHEMA,
    "database": {"url": "str"},
    "auth": OPEN,
    # ours: tag retention and immutable tags (registry.gc.policies reads and checks them)
    "retention": {"dryrun": "bool", "interval": "duration", "policies": "list"},
    "immutable": "list",
    "health": HEALTH_SCHEMA,
    "notifications": {"events": {"includereferences": "bool"}, "endpoints": "list"},  # registry.events.endpoints
    "proxy": UPSTREAM_SCHEMA,
    "proxies": {"*": UPSTREAM_SCHEMA},  # ours: several upstreams, each under a prefix
    **dict.fromkeys(UNIMPLEMENTED, IGNORED),
}


def apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> tuple[str, ...]:
    unknown: list[str] = []
    for name in sorted(environ):  # lexical, like distribution: REGISTRY_STORAGE before REGISTRY_STORAGE_S3_*
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper == ENV_PREFIX:
            continue
        path = _env_path(raw, SCHEMA, upper[len(ENV_PREFIX) :].split("_"))
        if path is None:
            unknown.append(name)
        else:
            _env_set(raw, path, environ[name])
    return tuple(unknown)


def _env_set(raw: dict[str, Any], path: list[tuple[Any, object]], text: str) -> None:
    node = raw
    for key, _ in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {child: {}} if isinstance(child, str) and key in ("storage", "auth") else {}
            node[key] = child
        node = child
    _assign(node, *path[-1], text)


def _env_path(node: object, schema: object, tokens: list[str]) -> list[tuple[Any, object]] | None:
    """The keys and schema kinds an env var's tokens lead to; longest match first, so keys with "_" work."""
    mapping = node if isinstance(node, dict) else {}
    for n in range(len(tokens), 0, -1):
        key = _find_key(mapping, schema, "_".join(tokens[:n]))
        if key is None:
            continue
        child_schema = schema.get(key, schema.get("*")) if isinstance(schema, dict) else OPEN
        if n == len(tokens):
            return [(key, child_schema)]
        if isinstance(child_schema, dict) or child_schema in (OPEN, IGNORED):
            tail = _env_path(mapping.get(key), child_schema, tokens[n:])
            if tail is not None:
                return [(key, child_schema), *tail]
    return None


def _find_key(node: dict[Any, Any], schema: object, wanted: str) -> Any:
    if isinstance(schema, dict):
        known = [key for key in schema if key != "*" and key.upper() == wanted]
        if known or "*" not in schema:
            return known[0] if known else None
    existing = [key for key in node if str(key).upper() == wanted]
    if existing:
        return existing[0]
    return wanted.lower() if "_" not in wanted else None


def _assign(node: dict[Any, Any], key: Any, kind: object, text: str) -> None:
    value = _env_value(kind, text)
    if kind is STORAGE_SCHEMA and isinstance(value, str):  # REGISTRY_STORAGE=s3 switches the driver
        section = node.get(key)
        kept = {k: v for k, v in section.items() if k in NON_DRIVER_KEYS} if isinstance(section, dict) else {}
        value = {**kept, value: {}}
    node[key] = value


def _env_value(kind: object, text: str) -> object:
    if not text:
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if kind == "str" and not isinstance(value, str) else value


def ignored_keys(node: dict[Any, Any], schema: dict[str, object], prefix: str = "") -> list[str]:
    found: list[str] = []
    for key, value in node.items():
        child = schema.get(key, schema.get("*", IGNORED)) if isinstance(key, str) else IGNORED
        if child == IGNORED:
            found.append(f"{prefix}{key}")
        elif isinstance(child, dict) and isinstance(value, dict):
            found.extend(ignored_keys(value, child, f"{prefix}{key}."))
    return found
