"""The client of one upstream registry: manifests (HEAD, GET) and blobs (HEAD, streamed GET) over httpx, with
Basic auth or docker's token flow (a 401 with ``WWW-Authenticate: Bearer realm=...,service=...,scope=...`` sends us
to the token service with the configured credentials, if any; the token is kept per scope until it expires).

Every failure is an ``UpstreamError``: ``unavailable`` when the upstream could not answer (unreachable, 5xx, 429:
cached content may still be served), otherwise the upstream's own answer about the content (404 MANIFEST_UNKNOWN).
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from registry.errors import ErrorCode, RegistryError
from registry.manifests import KNOWN_TYPES, MANIFEST_MAX_SIZE
from registry.proxy.config import Upstream

log = logging.getLogger("registry.proxy")
MANIFEST_ACCEPT = ", ".join(sorted(KNOWN_TYPES))
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
TOKEN_LIFETIME = 60.0  # docker's token spec: expires_in defaults to 60 seconds
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class UpstreamError(Exception):
    def __init__(self, error: RegistryError, *, unavailable: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.unavailable = unavailable


@dataclass(frozen=True)
class Found:
    """What a HEAD or GET said about a manifest or a blob."""

    digest: str | None
    media_type: str | None
    size: int | None
    body: bytes = b""


class UpstreamClient:
    def __init__(self, upstream: Upstream, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.upstream = upstream
        self._http = httpx.AsyncClient(
            base_url=upstream.remoteurl, transport=transport, timeout=TIMEOUT, follow_redirects=True
        )
        self._tokens: dict[str, tuple[str, float]] = {}  # scope -> (token, expiry on the monotonic clock)
        self._basic = upstream.username is not None

    async def close(self) -> None:
        await self._http.aclose()

    async def head_manifest(self, name: str, reference: str) -> Found:
        async with self._request("HEAD", name, f"manifests/{reference}", {"Accept": MANIFEST_ACCEPT}) as response:
            return _found(response)

    async def get_manifest(self, name: str, reference: str) -> Found:
        async with self._request("GET", name, f"manifests/{reference}", {"Accept": MANIFEST_ACCEPT}) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MANIFEST_MAX_SIZE:
                    raise _bad_upstream(f"the manifest is larger than {MANIFEST_MAX_SIZE} bytes")
            found = _found(response)
            return Found(found.digest, found.media_type, len(body), bytes(body))

    async def head_blob(self, name: str, digest: str) -> Found:
        async with self._request("HEAD", name, f"blobs/{digest}", {}) as response:
            return _found(response)

    @asynccontextmanager
    async def blob(self, name: str, digest: str) -> AsyncIterator[tuple[Found, AsyncIterator[bytes]]]:
        """The blob's size (when the upstream says) and its bytes, as they arrive; the connection is released after."""
        async with self._request("GET", name, f"blobs/{digest}", {"Accept-Encoding": "identity"}) as response:
            yield _found(response), response.aiter_bytes()

    @asynccontextmanager
    async def _request(
        self, method: str, name: str, tail: str, headers: dict[str, str]
    ) -> AsyncIterator[httpx.Response]:
        url, scope = f"/v2/{name}/{tail}", f"repository:{name}:pull"
        try:
            response = await self._send(method, url, scope, headers)
        except httpx.HTTPError as exc:
            raise _unreachable(self.upstream, exc) from None
        try:
            if response.status_code >= 300:
                await response.aread()
                raise _refused(response, tail.startswith("blobs/"))
            yield response
        except httpx.HTTPError as exc:
            raise _unreachable(self.upstream, exc) from None
        finally:
            await response.aclose()

    async def _send(self, method: str, url: str, scope: str, headers: dict[str, str]) -> httpx.Response:
        """The response, streaming; after a Bearer challenge, the answer to the request again with a token."""
        response = await self._send_once(method, url, self._auth(scope, headers))
        challenge = response.headers.get("www-authenticate", "")
        if response.status_code != 401 or not challenge.lower().startswith("bearer"):
            return response  # a Basic challenge to our credentials (or to none) is the caller's DENIED
        await response.aclose()
        await self._fetch_token(challenge, scope)
        return await self._send_once(method, url, self._auth(scope, headers))

    async def _send_once(self, method: str, url: str, headers: dict[str, str]) -> httpx.Response:
        return await self._http.send(self._http.build_request(method, url, headers=headers), stream=True)

    def _auth(self, scope: str, headers: dict[str, str]) -> dict[str, str]:
        token = self._tokens.get(scope)
        if token is not None and token[1] > time.monotonic():
            return {**headers, "Authorization": f"Bearer {token[0]}"}
        if self._basic:
            return {**headers, "Authorization": self._basic_header()}
        return headers

    def _basic_header(self) -> str:
        pair = f"{self.upstream.username}:{self.upstream.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    async def _fetch_token(self, challenge: str, scope: str) -> None:
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.pop("realm", None)
        if realm is None:
            raise _bad_upstream("the upstream's Bearer challenge names no realm")
        query = {"scope": scope, **({"service": params["service"]} if "service" in params else {})}
        headers = {"Authorization": self._basic_header()} if self._basic else {}
        try:
            response = await self._http.get(realm, params=query, headers=headers)
        except httpx.HTTPError as exc:
            raise _unreachable(self.upstream, exc) from None
        if response.status_code != 200:
            raise UpstreamError(
                ErrorCode.DENIED.error({"upstream": self.upstream.remoteurl, "token_status": response.status_code}),
                unavailable=response.status_code >= 500,
            )
        body: Any = response.json()
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise _bad_upstream("the upstream's token service answered no token")
        lifetime = body.get("expires_in")
        lifetime = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else TOKEN_LIFETIME
        self._tokens[scope] = (token, time.monotonic() + lifetime * 0.9)


def _found(response: httpx.Response) -> Found:
    length = response.headers.get("content-length")
    size = int(length) if length is not None and length.isdigit() else None
    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip() or None
    return Found(response.headers.get("docker-content-digest"), media_type, size)


def _unreachable(upstream: Upstream, exc: Exception) -> UpstreamError:
    log.warning("upstream %s unreachable: %s", upstream.remoteurl, exc)
    detail = {"upstream": upstream.remoteurl, "reason": f"{type(exc).__name__}: {exc}"}
    return UpstreamError(ErrorCode.UNAVAILABLE.error(detail, message="upstream registry unavailable"), unavailable=True)


def _bad_upstream(reason: str) -> UpstreamError:
    error = ErrorCode.UNAVAILABLE.error({"reason": reason}, status=502, message="bad answer from the upstream registry")
    return UpstreamError(error, unavailable=True)


def _refused(response: httpx.Response, blob: bool) -> UpstreamError:
    """The upstream's error as ours: its own code where it is about the content (404 MANIFEST_UNKNOWN), DENIED when it
    refused our credentials, UNAVAILABLE for a 5xx, TOOMANYREQUESTS for its rate limit."""
    status, code = response.status_code, _error_code(response)
    detail = {"upstream_status": status, **({"upstream_code": code} if code else {})}
    if status == 429:
        return UpstreamError(ErrorCode.TOOMANYREQUESTS.error(detail, message="upstream rate limit"), unavailable=True)
    if status >= 500 or status < 400:
        return UpstreamError(
            ErrorCode.UNAVAILABLE.error(detail, message="upstream registry unavailable"), unavailable=True
        )
    if status in (401, 403):
        return UpstreamError(
            ErrorCode.DENIED.error(detail, message="the upstream registry refused access"), unavailable=True
        )
    known = ErrorCode.__members__.get(code or "")
    if known is None or known.status != status:  # a 404 without a code of ours, or a code we would answer otherwise
        known = ErrorCode.BLOB_UNKNOWN if blob else ErrorCode.MANIFEST_UNKNOWN
        status = known.status if response.status_code == 404 else status
    return UpstreamError(known.error(detail, status=status), unavailable=False)


def _error_code(response: httpx.Response) -> str | None:
    try:
        errors = response.json().get("errors")
        code = errors[0].get("code") if isinstance(errors, list) and errors else None
    except (ValueError, AttributeError, TypeError):
        return None
    return code if isinstance(code, str) else None
