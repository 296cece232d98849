"""The built-in token service: checks a user's password (or refresh token), and signs access tokens that carry
what the rules grant, and refresh tokens that carry nothing but who the user is.

Nothing is kept between requests, so any replica can answer: a refresh token is a JWT signed with the same key,
for the audience ``refresh:<service>`` (never accepted by the registry, which wants ``<service>``), and it names a
digest of the user's current htpasswd entry, so a changed password or a removed user ends it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from registry.auth import jwt, rules
from registry.auth.htpasswd import Htpasswd
from registry.auth.jwt import PrivateKey, PublicKey, TokenError
from registry.auth.settings import ServerSettings, TokenSettings
from registry.auth.trust import key_id

REFRESH_PREFIX = "refresh:"


@dataclass(frozen=True)
class Issued:
    token: str
    expires_in: int
    issued_at: str
    refresh_token: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "token": self.token,
            "access_token": self.token,
            "expires_in": self.expires_in,
            "issued_at": self.issued_at,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


class TokenService:
    def __init__(
        self, settings: TokenSettings, server: ServerSettings, key: PrivateKey, users: Htpasswd | None
    ) -> None:
        self.settings = settings
        self.server = server
        self.key = key
        self.kid = key_id(key.public_key())
        self.users = users

    @property
    def public_key(self) -> PublicKey:
        return self.key.public_key()

    async def login(self, user: str, password: str) -> bool:
        return self.users is not None and await self.users.verify(user, password)

    def _entry_digest(self, user: str) -> str | None:
        entry = self.users.entry(user) if self.users is not None else None
        return None if entry is None else hashlib.sha256(entry.encode()).hexdigest()[:32]

    def issue(
        self, user: str | None, scopes: list[tuple[str, str, tuple[str, ...]]], *, offline: bool = False
    ) -> Issued:
        now = int(time.time())
        access = [{"type": k, "name": n, "actions": a} for k, n, a in rules.grant(self.server, user, scopes)]
        claims = self._claims(user or "", self.settings.service, now, self.server.expiration) | {"access": access}
        refresh = self.refresh_token(user, now) if offline and user is not None else None
        issued_at = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Issued(jwt.sign(claims, self.key, {"kid": self.kid}), int(self.server.expiration), issued_at, refresh)

    def _claims(self, subject: str, audience: str, now: int, lifetime: float) -> dict[str, Any]:
        return {
            "iss": self.settings.issuer,
            "sub": subject,
            "aud": audience,
            "exp": now + int(lifetime),
            "nbf": now,
            "iat": now,
            "jti": secrets.token_urlsafe(16),
        }

    def refresh_token(self, user: str, now: int) -> str:
        audience = REFRESH_PREFIX + self.settings.service
        claims = self._claims(user, audience, now, self.server.refresh_expiration) | {"pwd": self._entry_digest(user)}
        return jwt.sign(claims, self.key, {"kid": self.kid})

    def refresh_subject(self, token: str) -> str:
        """The user a refresh token of ours was issued to, while it is valid; TokenError otherwise."""
        decoded = jwt.decode(token)
        if decoded.header.get("kid") != self.kid:
            raise TokenError("not a refresh token of this service")
        jwt.verify_signature(decoded, self.public_key, frozenset({jwt.algorithm_for(self.key)}))
        claims = decoded.claims
        expires, user = claims.get("exp"), claims.get("sub")
        if claims.get("iss") != self.settings.issuer or claims.get("aud") != REFRESH_PREFIX + self.settings.service:
            raise TokenError("not a refresh token of this service")
        if not isinstance(expires, int) or time.time() > expires or not isinstance(user, str) or not user:
            raise TokenError("the refresh token has expired")
        digest = self._entry_digest(user)
        if digest is None or not secrets.compare_digest(str(claims.get("pwd")), digest):
            raise TokenError("the user's password changed or the user was removed")
        return user
