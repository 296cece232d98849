"""Checking a bearer token as the Docker token spec (``jwt.md``) says: a trusted key signed it with an accepted
algorithm, ``iss`` is our issuer, ``aud`` names our service, and now is within ``nbf``..``exp`` give or take a
minute. Its ``access`` claim becomes the caller's grants."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from registry.auth import jwt
from registry.auth.access import Grants, grants_from
from registry.auth.jwt import PublicKey, TokenError
from registry.auth.trust import TrustStore

LEEWAY = 60.0


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(f"the {name} claim is not a number")
    return float(value)


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    values = aud if isinstance(aud, list) else [aud]
    return [value for value in values if isinstance(value, str)]


def _access(claims: dict[str, Any]) -> Iterator[tuple[str, str, list[str]]]:
    items = claims.get("access") or []
    if not isinstance(items, list):
        raise TokenError("the access claim is not a list")
    for item in items:
        if not isinstance(item, dict):
            raise TokenError("an access entry is not an object")
        kind, name, actions = item.get("type"), item.get("name"), item.get("actions") or []
        if not isinstance(kind, str) or not isinstance(name, str) or not isinstance(actions, list):
            raise TokenError("an access entry has no type, name or actions")
        yield kind, name, [action for action in actions if isinstance(action, str)]


@dataclass(frozen=True)
class TokenVerifier:
    issuer: str
    service: str
    trust: TrustStore
    algorithms: frozenset[str]
    leeway: float = LEEWAY
    service_key: PublicKey | None = None  # the built-in token service's, as held in ``trust`` (found by its kid)

    def verify(self, token: str, now: float | None = None) -> Grants:
        """The grants a token carries; TokenError when it must not be trusted."""
        decoded = jwt.decode(token)
        key = self.trust.key_for(decoded.header)
        jwt.verify_signature(decoded, key, self.algorithms)
        claims = decoded.claims
        now = time.time() if now is None else now
        if claims.get("iss") != self.issuer:
            raise TokenError("the token is from another issuer")
        if self.service not in _audiences(claims):
            raise TokenError("the token is for another service")
        expires, not_before = _number(claims, "exp"), _number(claims, "nbf")
        if expires is None or now > expires + self.leeway:
            raise TokenError("the token has expired")
        if not_before is not None and now < not_before - self.leeway:
            raise TokenError("the token is not valid yet")
        subject = claims.get("sub")
        subject = subject if isinstance(subject, str) else ""
        return grants_from(subject, _access(claims), by_token_service=self._by_token_service(key))

    def _by_token_service(self, key: PublicKey) -> bool:
        return self.service_key is not None and key is self.service_key
