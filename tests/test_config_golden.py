"""Representative configurations (the image's, config.example.yml with docker-compose.yml's environment, the
README's examples, environment overrides) build exactly the typed values recorded in ``data/config_golden.json``.

The record was made before the configuration keys were declared in one table; regenerate it only for an intended
change: ``.venv/bin/python -m tests.test_config_golden``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from registry.auth.settings import auth_settings
from registry.cli import _tls_options
from registry.config import Config, ConfigError, load_config
from registry.events.endpoints import Notifications
from registry.gc.policies import Policies

HERE = Path(__file__).parent
CONFIGS = HERE / "data" / "configs"
GOLDEN = HERE / "data" / "config_golden.json"
EXAMPLE = str(HERE.parent / "config.example.yml")  # the image's file; docker-compose.yml runs it as is or with:
COMPOSE_ENV = {"REGISTRY_DATABASE_URL": "postgresql+asyncpg://registry:registry@postgres/registry"}
MIXED_ENV = {
    "REGISTRY_STORAGE": "s3",
    "REGISTRY_STORAGE_S3_BUCKET": "images",
    "REGISTRY_STORAGE_S3_REGION": "eu-west-1",
    "REGISTRY_STORAGE_S3_SECURE": "false",
    "REGISTRY_STORAGE_S3_CHUNKSIZE": "6291456",
    "REGISTRY_STORAGE_GC_UNTAGGED": "never",
    "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE": "2h",
    "REGISTRY_HTTP_TRUSTEDPROXIES": "10.0.0.0/8, 127.0.0.1",
    "REGISTRY_HTTP_DEBUG_ADDR": "127.0.0.1:5001",
    "REGISTRY_HTTP_SECRET": "12345",
    "REGISTRY_LOG_LEVEL": "WARNING",
    "REGISTRY_LOG_FIELDS_SERVICE": "mirror",
    "REGISTRY_AUTH_HTPASSWD_REALM": "from-env",
    "REGISTRY_HEALTH_DATABASE_ENABLED": "true",
    "REGISTRY_NOTIFICATIONS_EVENTS_INCLUDEREFERENCES": "true",
    "REGISTRY_RETENTION_POLICIES": '[{"repositories": ["ci/**"], "keep": {"last": 5}}]',
    "REGISTRY_RETENTION_INTERVAL": "10m",
    "REGISTRY_IMMUTABLE": '[{"repositories": ["prod/**"]}]',
    "REGISTRY_PORT": "tcp://10.0.0.1:5000",
}
CASES: dict[str, tuple[str | None, dict[str, str]]] = {
    "example": (EXAMPLE, {}),
    "compose_postgres": (EXAMPLE, COMPOSE_ENV),
    "defaults": (None, {"REGISTRY_STORAGE_DELETE_ENABLED": "true", "REGISTRY_HTTP_ADDR": ":8080"}),
    "image_with_env": (str(CONFIGS / "image.yml"), MIXED_ENV),
    **{path.stem: (str(path), {}) for path in sorted(CONFIGS.glob("*.yml"))},
}


def canonical(value: object) -> str:
    """``repr``, with sets sorted: a frozenset's order changes with the interpreter's string hash seed."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        shown = (f"{f.name}={canonical(getattr(value, f.name))}" for f in dataclasses.fields(value) if f.repr)
        return f"{type(value).__name__}({', '.join(shown)})"
    if isinstance(value, frozenset | set):
        return f"{type(value).__name__}({{{', '.join(sorted(map(canonical, value)))}}})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{canonical(k)}: {canonical(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(map(canonical, value)) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(map(canonical, value)) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def _shown(build: Callable[[], object]) -> str:
    try:
        return canonical(build())
    except ConfigError as exc:
        return f"ConfigError: {exc}"


def snapshot(path: str | None, environ: dict[str, str]) -> dict[str, str]:
    try:
        config: Config = load_config(path, environ)
    except ConfigError as exc:
        return {"config": f"ConfigError: {exc}"}
    return {
        "config": canonical(config),
        "auth": _shown(lambda: auth_settings(config)),
        "policies": _shown(lambda: Policies.from_config(config)),
        "notifications": _shown(lambda: Notifications.from_config(config)),
        "tls": _shown(lambda: _tls_options(config.http.tls or {})),
    }


def snapshots() -> dict[str, dict[str, str]]:
    return {name: snapshot(path, environ) for name, (path, environ) in CASES.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_configuration_builds_what_it_built_before(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")  # the defaults' ./data
    expected = json.loads(GOLDEN.read_text())[name]
    assert snapshot(*CASES[name]) == expected


def test_every_case_is_recorded() -> None:
    assert sorted(json.loads(GOLDEN.read_text())) == sorted(CASES)


if __name__ == "__main__":
    import os

    os.chdir("/")
    GOLDEN.write_text(json.dumps(snapshots(), indent=1, sort_keys=True) + "\n")
    sys.stdout.write(f"wrote {GOLDEN}\n")
