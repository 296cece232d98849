"""Token authentication, imported only when the configuration asks for it (``cryptography`` comes with it): the
BearerGate, its trust (the keys of the configuration and the built-in token service's own), and the token service
with its key loaded or created now."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from starlette.requests import Request

from registry.auth.access import Grants, Need, scope_param
from registry.auth.gate import bearer_token, quote, refusal
from registry.auth.htpasswd import Htpasswd
from registry.auth.jwt import TokenError
from registry.auth.service import TokenService
from registry.auth.settings import TokenSettings
from registry.auth.token import TokenVerifier
from registry.auth.trust import TrustStore, load_jwks, load_or_create_key, load_root_bundle
from registry.config import ConfigError
from registry.errors import RegistryError
from registry.forwarded import base_url

_LOAD_ERRORS = (OSError, ValueError, TypeError, UnsupportedAlgorithm)


@dataclass
class BearerGate:
    realm: str | None  # None: the built-in token service's URL, named by the route "token"
    service: str
    verifier: TokenVerifier

    async def authorize(self, request: Request, need: Need) -> Grants:
        token = bearer_token(request)
        if token is None:
            raise self._challenge(request, need, None)
        try:
            grants = self.verifier.verify(token)
        except TokenError:
            raise self._challenge(request, need, "invalid_token") from None
        if not all(grants.allows(access) for access in need.required):
            raise self._challenge(request, need, "insufficient_scope")
        return grants

    def _challenge(self, request: Request, need: Need, error: str | None) -> RegistryError:
        challenge = f"Bearer realm={quote(self._realm(request))},service={quote(self.service)}"
        scope = scope_param((*need.required, *need.optional))
        if scope:
            challenge += f",scope={quote(scope)}"
        if error:
            challenge += f",error={quote(error)}"
        return refusal(need, challenge)

    def _realm(self, request: Request) -> str:
        if self.realm is not None:
            return self.realm
        host = request.app.state.services.config.http.host
        return base_url(request, host) + str(request.app.url_path_for("token"))


def token_auth(settings: TokenSettings, users: Htpasswd | None) -> tuple[BearerGate, TokenService | None]:
    """The registry trusts the keys of the configuration, and the built-in token service's own key; ``users`` are
    the token service's (``auth.token.server.htpasswd``)."""
    trust = _trust(settings)
    service = _token_service(settings, users)
    service_key = None
    if service is not None:
        service_key = service.public_key  # one object: a token it signed is known by ``is`` (TokenVerifier)
        trust = TrustStore(roots=trust.roots, keys={**trust.keys, service.kid: service_key})
    verifier = TokenVerifier(settings.issuer, settings.service, trust, settings.algorithms, service_key=service_key)
    return BearerGate(settings.realm, settings.service, verifier), service


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


def _token_service(settings: TokenSettings, users: Htpasswd | None) -> TokenService | None:
    server = settings.server
    if server is None:
        return None
    try:
        private_key = load_or_create_key(server.key)
    except _LOAD_ERRORS as exc:
        raise ConfigError("auth.token.server.key", f"cannot load or create {server.key}: {exc}") from None
    return TokenService(settings, server, private_key, users)
