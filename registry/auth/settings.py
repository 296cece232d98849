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
from typing import TYPE_CHECKING, Any

from registry.auth.access import ANY, DELETE, PULL, PUSH
from registry.settings import Bool, ConfigError, Duration, Items, Section, Strings, Text

if TYPE_CHECKING:
    from registry.config import Config

ACTIONS = (PULL, PUSH, DELETE, ANY)
DEFAULT_PATH = "/auth/token"
DEFAULT_EXPIRATION = 300.0
DEFAULT_REFRESH_EXPIRATION = 30 * 24 * 3600.0
TEN_YEARS = 10 * 365 * 86400.0


def _token_path(path: str) -> str:
    if not path.startswith("/") or path.startswith("/v2/") or path == "/v2" or "?" in path:
        raise ValueError(f"expected an absolute path outside /v2/, got {path!r}")
    return path


def _actions(actions: list[str]) -> list[str]:
    wrong = [action for action in actions if action not in ACTIONS]
    if wrong:
        raise ValueError(f"unknown action {wrong[0]!r}: expected {', '.join(ACTIONS)}")
    return actions


RULE = Section(
    {
        **{"users": Strings([]), "groups": Strings([]), "repositories": Strings([])},
        **{"actions": Strings([], check=_actions), "catalog": Bool(False)},
    },
    strict=True,
)
SERVER = Section(  # ours: the built-in token service (registry.auth.service)
    {
        **{"path": Text(DEFAULT_PATH, check=_token_path), "key": Text(required=True), "htpasswd": Text()},
        "expiration": Duration(DEFAULT_EXPIRATION, seconds=True, limit=TEN_YEARS),
        "refreshexpiration": Duration(DEFAULT_REFRESH_EXPIRATION, seconds=True, limit=TEN_YEARS),
        **{"anonymouspull": Strings([]), "groups": Section({}, other=Strings([])), "access": Items(RULE)},
    },
    optional=True,
)
PROVIDERS = {  # auth.<provider>: distribution's keys (and our token server)
    "htpasswd": Section({"realm": Text(required=True), "path": Text(required=True)}),
    "token": Section(
        {
            **dict.fromkeys(("realm", "rootcertbundle", "jwks"), Text()),
            **{"service": Text(required=True), "issuer": Text(required=True), "signingalgorithms": Strings()},
            "server": SERVER,
        }
    ),
}


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
    section = PROVIDERS.get(provider)
    if section is None:
        raise ConfigError(f"auth.{provider}", "not implemented: expected htpasswd, token or none")
    values = section.read(params, f"auth.{provider}")
    return HtpasswdSettings(**values) if provider == "htpasswd" else _token(values)


def _token(values: dict[str, Any]) -> TokenSettings:
    from registry.auth.jwt import ALGORITHMS  # cryptography: imported only for token auth

    server = _server(values["server"]) if values["server"] is not None else None
    algorithms = frozenset(values["signingalgorithms"] or ALGORITHMS)
    unknown = sorted(algorithms - set(ALGORITHMS))
    if unknown:
        expected = ", ".join(ALGORITHMS)
        raise ConfigError("auth.token.signingalgorithms", f"unsupported {unknown[0]!r}: expected {expected}")
    if server is None and values["realm"] is None:
        raise ConfigError("auth.token.realm", "expected a non-empty string, got None")
    settings = TokenSettings(
        realm=values["realm"],
        service=values["service"],
        issuer=values["issuer"],
        rootcertbundle=values["rootcertbundle"],
        jwks=values["jwks"],
        algorithms=algorithms,
        server=server,
    )
    if server is None and settings.rootcertbundle is None and settings.jwks is None:
        raise ConfigError("auth.token.rootcertbundle", "expected rootcertbundle or jwks: the keys that sign tokens")
    return settings


def _server(values: dict[str, Any]) -> ServerSettings:
    return ServerSettings(
        path=values["path"],
        key=values["key"],
        htpasswd=values["htpasswd"],
        expiration=values["expiration"],
        refresh_expiration=values["refreshexpiration"],
        anonymous_pull=tuple(values["anonymouspull"]),
        groups={group: frozenset(users) for group, users in values["groups"].items()},
        rules=tuple(_rule(rule, f"auth.token.server.access[{index}]") for index, rule in enumerate(values["access"])),
    )


def _rule(rule: dict[str, Any], key: str) -> Rule:
    if not rule["users"] and not rule["groups"]:
        raise ConfigError(key, "a rule needs users or groups (users: ['*'] is anyone who logged in)")
    return Rule(
        frozenset(rule["users"]),
        frozenset(rule["groups"]),
        tuple(rule["repositories"]),
        frozenset(rule["actions"]),
        rule["catalog"],
    )
