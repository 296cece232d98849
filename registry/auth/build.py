"""The gate and the token service a configuration asks for, with every file they need read now: a missing
htpasswd file, certificate bundle or unreadable key is a configuration error at start, never at the first request.
Token authentication (``registry.auth.bearer``, and ``cryptography`` with it) is imported only when configured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from registry.auth.gate import BasicGate, Gate
from registry.auth.htpasswd import Htpasswd, HtpasswdError
from registry.auth.settings import HtpasswdSettings, TokenSettings, auth_settings
from registry.config import Config, ConfigError

if TYPE_CHECKING:
    from registry.auth.service import TokenService

HTPASSWD_HINT = "create it with `registry user add NAME --file PATH`"


@dataclass(frozen=True)
class Auth:
    gate: Gate | None = None
    token_service: TokenService | None = None


def build_auth(config: Config) -> Auth:
    settings = auth_settings(config)
    if settings is None:
        return Auth()
    if isinstance(settings, HtpasswdSettings):
        return Auth(BasicGate(settings.realm, _htpasswd(settings.path, "auth.htpasswd.path")))
    return _token_auth(settings)


def _htpasswd(path: str, key: str) -> Htpasswd:
    try:
        return Htpasswd(path)
    except HtpasswdError as exc:
        raise ConfigError(key, f"{exc} ({HTPASSWD_HINT})") from None


def _token_auth(settings: TokenSettings) -> Auth:
    from registry.auth.bearer import token_auth

    server = settings.server
    users = _htpasswd(server.htpasswd, "auth.token.server.htpasswd") if server and server.htpasswd else None
    gate, service = token_auth(settings, users)
    return Auth(gate, service)
