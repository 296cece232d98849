"""The ``auth`` section, typed: distribution's ``htpasswd`` and ``token`` providers, and our token service.

auth:
  htpasswd: {realm, path}
  token:
    realm, service, issuer, rootcertbundle, jwks, signingalgorithms     distribution's keys
    server:                                                             ours: the built-in token service
      path, key, htpasswd, expiration, refreshexpiration, anonymouspull, groups, access
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.auth.access import ANY, DELETE, PULL, PUSH
from registry.config import Config, ConfigError, parse_duration

ACTIONS = (PULL, PUSH, DELETE, ANY)
DEFAULT_PATH = "/auth/token"
DEFAULT_EXPIRATION = 300.0
DEFAULT_REFRESH_EXPIRATION = 30 * 24 * 3600.0
_RULE_KEYS = frozenset({"users", "groups", "repositories", "actions", "catalog"})


@dataclass(frozen=True)
class HtpasswdSettings:
    realm: str
    path: str


@dataclass(frozen=True)
class Rule:
    """``users`` (``*``: anyone who logged in) or members of ``groups`` get ``actions`` on ``repositories``
    (globs; ``${user}`` is the user's name) and, with ``catalog``, the repository list."""

    users: frozenset[str]
    groups: frozenset[str]
    repositories: tuple[str, ...]
    actions: frozenset[str]
    catalog: bool = False


@dataclass(frozen=True)
class ServerSettings:
    path: str
    key: str
    htpasswd: str | None
    expiration: float
    refresh_expiration: float
    anonymous_pull: tuple[str, ...]
    groups: dict[str, frozenset[str]]
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class TokenSettings:
    realm: str | None  # None: the token service's own URL, as the client reached the registry
    service: str
    issuer: str
    rootcertbundle: str | None
    jwks: str | None
    algorithms: frozenset[str]
    server: ServerSettings | None


AuthSettings = HtpasswdSettings | TokenSettings


def auth_settings(config: Config) -> AuthSettings | None:
    provider, params = next(iter((config.auth or {"none": {}}).items()))
    if provider == "none":
        return None
    if provider == "htpasswd":
        return HtpasswdSettings(_text(params, "auth.htpasswd", "realm"), _text(params, "auth.htpasswd", "path"))
    if provider == "token":
        return _token(params)
    raise ConfigError(f"auth.{provider}", "not implemented: expected htpasswd, token or none")


def _text(params: dict[str, Any], section: str, key: str, default: str | None = None) -> str:
    value = params.get(key, default)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{section}.{key}", f"expected a non-empty string, got {value!r}")
    return value


def _optional(params: dict[str, Any], section: str, key: str) -> str | None:
    return None if params.get(key) in (None, "") else _text(params, section, key)


def _names(value: object, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) and item for item in items):
        raise ConfigError(key, f"expected a list of names, got {value!r}")
    return tuple(items)


def _token(params: dict[str, Any]) -> TokenSettings:
    from registry.auth.jwt import ALGORITHMS  # cryptography: imported only for token auth

    section = "auth.token"
    server = _server(params["server"]) if params.get("server") is not None else None
    algorithms = frozenset(_names(params.get("signingalgorithms"), f"{section}.signingalgorithms") or ALGORITHMS)
    unknown = sorted(algorithms - set(ALGORITHMS))
    if unknown:
        expected = ", ".join(ALGORITHMS)
        raise ConfigError(f"{section}.signingalgorithms", f"unsupported {unknown[0]!r}: expected {expected}")
    settings = TokenSettings(
        realm=_optional(params, section, "realm") if server else _text(params, section, "realm"),
        service=_text(params, section, "service"),
        issuer=_text(params, section, "issuer"),
        rootcertbundle=_optional(params, section, "rootcertbundle"),
        jwks=_optional(params, section, "jwks"),
        algorithms=algorithms,
        server=server,
    )
    if server is None and settings.rootcertbundle is None and settings.jwks is None:
        raise ConfigError(f"{section}.rootcertbundle", "expected rootcertbundle or jwks: the keys that sign tokens")
    return settings


def _seconds(params: dict[str, Any], key: str, default: float) -> float:
    value = params.get(key, default)
    where = f"auth.token.server.{key}"
    try:
        seconds = parse_duration(value) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ConfigError(where, f"expected seconds or a duration like '5m', got {value!r}") from None
    if isinstance(value, bool) or not 0 < seconds <= 10 * 365 * 86400:
        raise ConfigError(where, f"expected a positive duration, got {value!r}")
    return seconds


def _server(params: object) -> ServerSettings:
    section = "auth.token.server"
    if not isinstance(params, dict):
        raise ConfigError(section, f"expected a mapping, got {params!r}")
    path = _text(params, section, "path", DEFAULT_PATH)
    if not path.startswith("/") or path.startswith("/v2/") or path == "/v2" or "?" in path:
        raise ConfigError(f"{section}.path", f"expected an absolute path outside /v2/, got {path!r}")
    return ServerSettings(
        path=path,
        key=_text(params, section, "key"),
        htpasswd=_optional(params, section, "htpasswd"),
        expiration=_seconds(params, "expiration", DEFAULT_EXPIRATION),
        refresh_expiration=_seconds(params, "refreshexpiration", DEFAULT_REFRESH_EXPIRATION),
        anonymous_pull=_names(params.get("anonymouspull"), f"{section}.anonymouspull"),
        groups=_groups(params.get("groups")),
        rules=tuple(_rule(rule, f"{section}.access[{index}]") for index, rule in enumerate(_list(params, "access"))),
    )


def _list(params: dict[str, Any], key: str) -> list[Any]:
    value = params.get(key) or []
    if not isinstance(value, list):
        raise ConfigError(f"auth.token.server.{key}", f"expected a list, got {value!r}")
    return value


def _groups(value: object) -> dict[str, frozenset[str]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("auth.token.server.groups", f"expected a mapping of group to users, got {value!r}")
    return {str(group): frozenset(_names(users, f"auth.token.server.groups.{group}")) for group, users in value.items()}


def _rule(rule: object, key: str) -> Rule:
    if not isinstance(rule, dict) or not set(rule) <= _RULE_KEYS:
        raise ConfigError(key, f"expected a mapping with keys among {', '.join(sorted(_RULE_KEYS))}, got {rule!r}")
    users, groups = _names(rule.get("users"), f"{key}.users"), _names(rule.get("groups"), f"{key}.groups")
    if not users and not groups:
        raise ConfigError(key, "a rule needs users or groups (users: ['*'] is anyone who logged in)")
    actions = _names(rule.get("actions"), f"{key}.actions")
    wrong = [action for action in actions if action not in ACTIONS]
    if wrong:
        raise ConfigError(f"{key}.actions", f"unknown action {wrong[0]!r}: expected {', '.join(ACTIONS)}")
    catalog = rule.get("catalog", False)
    if not isinstance(catalog, bool):
        raise ConfigError(f"{key}.catalog", f"expected true or false, got {catalog!r}")
    repositories = _names(rule.get("repositories"), f"{key}.repositories")
    return Rule(frozenset(users), frozenset(groups), repositories, frozenset(actions), catalog)
