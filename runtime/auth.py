"""The client side of registry authentication: Basic, and docker's Bearer token flow.

A 401 carries `WWW-Authenticate: Bearer realm="...",service="...",scope="..."`; the client asks `realm` for a token
for `service` and the scopes it needs (with Basic credentials when it has some, anonymously otherwise), then
repeats the request with `Authorization: Bearer <token>`. `Basic realm="..."` means credentials on every request.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import httpx

from .errors import AuthError

PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge:
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params)


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def fetch_token(
    http: httpx.Client, challenge: Challenge, scopes: list[str], credentials: tuple[str, str] | None
) -> str:
    realm = challenge.params.get("realm")
    if not realm:
        raise AuthError("the registry asked for a bearer token but named no realm to get it from")
    params: list[tuple[str, str | int | float | bool | None]] = []
    if "service" in challenge.params:
        params.append(("service", challenge.params["service"]))
    params.extend(("scope", s) for s in scopes)
    headers = {"Authorization": basic_header(*credentials)} if credentials else {}
    try:
        response = http.get(realm, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise AuthError(f"token service {realm} unreachable: {exc}") from exc
    if response.status_code != 200:
        who = "with the stored credentials" if credentials else "anonymously (runtime login first?)"
        raise AuthError(f"token service {realm} refused {who}: HTTP {response.status_code}", response.status_code)
    try:
        doc = response.json()
        token = doc.get("token") or doc.get("access_token")
    except ValueError:
        token = None
    if not isinstance(token, str) or not token:
        raise AuthError(f"token service {realm} answered no token")
    return token
