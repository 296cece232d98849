"""The one place a request's credentials are checked against what its route needs.

    BasicGate   htpasswd users: anyone who logged in may do anything (distribution's htpasswd)
    BearerGate  tokens: the token's access claim must hold every access the route needs (``registry.auth.bearer``,
                imported only with token auth)

A refusal is ``401 UNAUTHORIZED`` whose detail lists the access needed, with distribution's challenge:
``Basic realm="..."`` or ``Bearer realm="...",service="...",scope="..."[,error="invalid_token"|"insufficient_scope"]``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from registry.auth.access import Grants, Need, NeedOf
from registry.auth.htpasswd import Htpasswd
from registry.errors import ErrorCode, RegistryError


class Gate(Protocol):
    async def authorize(self, request: Request, need: Need) -> Grants: ...


def quote(value: str) -> str:
    """A quoted header parameter; control characters (a decoded ``%0d%0a`` in a path) are dropped."""
    cleaned = "".join(c for c in value if c.isprintable())
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _credentials(request: Request, scheme: str) -> str | None:
    header = request.headers.get("authorization", "")
    given, _, value = header.strip().partition(" ")
    return value.strip() if given.lower() == scheme else None


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(user, password) from ``Authorization: Basic``; None when absent or malformed."""
    value = _credentials(request, "basic")
    if value is None:
        return None
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = text.partition(":")
    return (user, password) if sep and user else None


def bearer_token(request: Request) -> str | None:
    return _credentials(request, "bearer") or None


def refusal(need: Need, challenge: str) -> RegistryError:
    detail = [access.detail() for access in need.required]
    return ErrorCode.UNAUTHORIZED.error(detail, headers={"WWW-Authenticate": challenge})


@dataclass
class BasicGate:
    realm: str
    users: Htpasswd

    async def authorize(self, request: Request, need: Need) -> Grants:
        credentials = basic_credentials(request)
        if credentials is None or not await self.users.verify(*credentials):
            raise refusal(need, f"Basic realm={quote(self.realm)}")
        return Grants(subject=credentials[0], unlimited=True)


Endpoint = Callable[[Request], Awaitable[Response]]


def guarded(endpoint: Endpoint, need: NeedOf) -> Endpoint:
    """``endpoint`` behind the app's gate (``app.state.gate``; None: no authentication): the caller's grants are
    left in ``request.state.grants`` for what a handler may use beyond what it needs (a mount's source)."""

    async def guard(request: Request) -> Response:
        gate: Gate | None = getattr(request.app.state, "gate", None)
        if gate is not None:
            request.state.grants = await gate.authorize(request, need(request))
        return await endpoint(request)

    return guard
