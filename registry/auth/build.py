"""The gate and the token service a configuration asks for, with every file they need read now: a missing
htpasswd file, certificate bundle or unreadable key is a configuration error at start, never at the first request."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm

from registry.auth.gate import BasicGate, BearerGate, Gate
from registry.auth.htpasswd import Htpasswd, HtpasswdError
from registry.auth.service import TokenService
from registry.auth.settings import HtpasswdSettings, TokenSettings, auth_settings
from registry.auth.token import TokenVerifier
from registry.auth.trust import TrustStore, load_jwks, load_or_create_key, load_root_bundle
from registry.config import Config, ConfigError

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


_LOAD_ERRORS = (OSError, ValueError, TypeError, UnsupportedAlgorithm)


def _trust(settings: TokenSettings) -> TrustStore:
    roots, keys = [], {}
    try:
        roots = load_root_bundle(settings.rootcertbundle) if settings.rootcertbundle else []
    except _LOAD_ERRORS as exc:
        raise ConfigError("auth.token.rootcertbundle", f"cannot load {settings.rootcertbundle}: {exc}") from None
    try:
        keys = load_jwks(settings.jwks) if settings.jwks else {}
    except _LOAD_ERRORS as exc:
        raise ConfigError("auth.token.jwks", f"cannot load {settings.jwks}: {exc}") from None
    return TrustStore(roots=roots, keys=keys)


def _token_service(settings: TokenSettings) -> TokenService | None:
    server = settings.server
    if server is None:
        return None
    try:
        private_key = load_or_create_key(server.key)
    except _LOAD_ERRORS as exc:
        raise ConfigError("auth.token.server.key", f"cannot load or create {server.key}: {exc}") from None
    users = _htpasswd(server.htpasswd, "auth.token.server.htpasswd") if server.htpasswd else None
    return TokenService(settings, server, private_key, users)


def _token_auth(settings: TokenSettings) -> Auth:
    """The registry trusts the keys of the configuration, and the built-in token service's own key."""
    trust = _trust(settings)
    service = _token_service(settings)
    if service is not None:
        trust = TrustStore(roots=trust.roots, keys={**trust.keys, service.kid: service.public_key})
    verifier = TokenVerifier(settings.issuer, settings.service, trust, settings.algorithms)
    return Auth(BearerGate(settings.realm, settings.service, verifier), service)
