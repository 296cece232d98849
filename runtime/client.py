"""A registry client over httpx: auth challenges, manifest negotiation, verified and resumable blob transfers."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .auth import Challenge, basic_header, fetch_token, parse_challenge
from .errors import AuthError, DigestMismatch, RegistryError
from .mediatypes import MANIFEST_ACCEPT

RETRIES = 5
CHUNK = 1 << 20
MAX_MANIFEST = 4 << 20
Progress = Callable[[int], None]


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def error_message(response: httpx.Response) -> str:
    """The spec's `{"errors": [{"code", "message"}]}` as `CODE: message`, else the status line."""
    with contextlib.suppress(ValueError, AttributeError, TypeError, httpx.ResponseNotRead):
        errors = response.json().get("errors") or []
        parts = [f"{e.get('code', '?')}: {e.get('message', '')}".rstrip(": ") for e in errors]
        if parts:
            return "; ".join(parts)
    return response.reason_phrase or "error"


@dataclass(frozen=True)
class Manifest:
    data: bytes
    media_type: str
    digest: str


class RegistryClient:
    def __init__(
        self,
        registry: str,
        *,
        credentials: tuple[str, str] | None = None,
        insecure: bool = False,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        scheme = "http" if insecure or is_loopback(registry) else "https"
        self.registry = registry
        self.base = f"{scheme}://{registry}"
        self.credentials = credentials
        self.http = httpx.Client(
            transport=transport, timeout=httpx.Timeout(timeout, connect=10), follow_redirects=True, trust_env=False
        )
        self.challenge: Challenge | None = None
        self.tokens: dict[tuple[str, ...], str] = {}

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- requests with authentication ----------------------------------------------------------------------------

    def _auth_header(self, scopes: tuple[str, ...]) -> dict[str, str]:
        if self.challenge is None:
            return {}
        if self.challenge.scheme == "basic":
            return {"Authorization": basic_header(*self.credentials)} if self.credentials else {}
        token = self.tokens.get(scopes)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _answer(self, response: httpx.Response, scopes: tuple[str, ...]) -> None:
        """React to a 401: remember the challenge and get what it asks for, or raise AuthError."""
        header = response.headers.get("www-authenticate", "")
        challenge = parse_challenge(header) if header else None
        if challenge is None or challenge.scheme not in ("basic", "bearer"):
            raise AuthError(f"{self.registry} answered 401 with no usable challenge ({header!r})", 401)
        if challenge.scheme == "basic" and self.credentials is None:
            raise AuthError(f"{self.registry} needs credentials: runtime login {self.registry}", 401)
        self.challenge = challenge
        if challenge.scheme == "bearer":
            self.tokens[scopes] = fetch_token(self.http, challenge, list(scopes), self.credentials)

    @contextlib.contextmanager
    def stream(
        self, method: str, url: str, scopes: tuple[str, ...], headers: dict[str, str] | None = None, **kw: Any
    ) -> Iterator[httpx.Response]:
        """Send a request, answering one auth challenge; yields the streaming response (the caller checks it)."""
        full = url if url.startswith(("http://", "https://")) else self.base + url
        for attempt in range(2):
            request = self.http.build_request(
                method, full, headers={**(headers or {}), **self._auth_header(scopes)}, **kw
            )
            response = self.http.send(request, stream=True)  # transport errors propagate: the CLI reports them
            if response.status_code == 401 and attempt == 0:
                response.close()
                self._answer(response, scopes)
                continue
            try:
                yield response
            finally:
                response.close()
            return

    def request(self, method: str, url: str, scopes: tuple[str, ...], **kw: Any) -> httpx.Response:
        with self.stream(method, url, scopes, **kw) as response:
            response.read()
            return response

    def check(self, response: httpx.Response, *ok: int) -> httpx.Response:
        if response.status_code in ok:
            return response
        if not response.is_stream_consumed:
            response.read()
        what = f"{response.request.method} {response.request.url.path}"
        message = f"registry {self.registry} refused {what}: HTTP {response.status_code} {error_message(response)}"
        if response.status_code in (401, 403):
            hint = "" if self.credentials else f" (runtime login {self.registry}?)"
            raise AuthError(message + hint, response.status_code)
        raise RegistryError(message, response.status_code)

    # ---- reading -------------------------------------------------------------------------------------------------

    def ping(self) -> None:
        """`GET /v2/`, answering its challenge: raises AuthError when the credentials are refused."""
        self.check(self.request("GET", "/v2/", ()), 200)

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        scopes = (f"repository:{repository}:pull",)
        with self.stream(
            "GET", f"/v2/{repository}/manifests/{reference}", scopes, headers={"Accept": MANIFEST_ACCEPT}
        ) as response:
            self.check(response, 200)
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_MANIFEST:
                    raise RegistryError(f"manifest {repository}:{reference} is larger than {MAX_MANIFEST} bytes")
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise DigestMismatch(f"manifest {repository}@{reference}: received bytes hash to {digest}")
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        return Manifest(data, media_type, digest)

    def fetch_blob(self, repository: str, digest: str, size: int, dest: Path, progress: Progress | None = None) -> None:
        """Download a blob into `dest`, resuming with Range after a dropped connection; verify size and digest."""
        scopes = (f"repository:{repository}:pull",)
        sha = hashlib.sha256()
        with open(dest, "wb") as out:
            for attempt in range(RETRIES + 1):
                offset = out.tell()
                headers = {"Range": f"bytes={offset}-"} if offset else {}
                try:
                    with self.stream("GET", f"/v2/{repository}/blobs/{digest}", scopes, headers=headers) as response:
                        if offset and response.status_code == 200:  # no Range support: start again
                            out.seek(0)
                            out.truncate()
                            sha = hashlib.sha256()
                            if progress:
                                progress(-offset)
                        elif offset and not _resumes_at(response, offset):
                            self.check(response, 206)
                            raise RegistryError(f"blob {digest}: range answer does not start at byte {offset}")
                        else:
                            self.check(response, 200, 206)
                        for chunk in response.iter_bytes():  # as received: nothing held back when the connection drops
                            out.write(chunk)
                            sha.update(chunk)
                            if progress:
                                progress(len(chunk))
                            if out.tell() > size:
                                raise DigestMismatch(f"blob {digest} is longer than its descriptor's {size} bytes")
                    break
                except httpx.TransportError:
                    if attempt == RETRIES:
                        raise
        got = "sha256:" + sha.hexdigest()
        length = dest.stat().st_size
        if length != size or got != digest:
            raise DigestMismatch(f"blob {digest}: received {length} bytes hashing to {got}, expected {size} bytes")

    # ---- writing -------------------------------------------------------------------------------------------------

    def has_blob(self, repository: str, digest: str, scopes: tuple[str, ...]) -> bool:
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", scopes)
        if response.status_code == 404:
            return False
        self.check(response, 200)
        return True

    def start_upload(self, repository: str, digest: str, source: str | None, scopes: tuple[str, ...]) -> str | None:
        """POST an upload (a cross-repository mount when `source` is given): None when mounted, else the Location."""
        params = {"mount": digest, "from": source} if source else {}
        response = self.check(self.request("POST", f"/v2/{repository}/blobs/uploads/", scopes, params=params), 201, 202)
        if response.status_code == 201:
            return None
        return str(response.url.join(response.headers["location"]))

    def upload(self, location: str, path: Path, digest: str, scopes: tuple[str, ...]) -> None:
        url = httpx.URL(location).copy_merge_params({"digest": digest})
        size = path.stat().st_size
        with open(path, "rb") as f:
            response = self.request(
                "PUT",
                str(url),
                scopes,
                content=iter(lambda: f.read(CHUNK), b""),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            )
        self.check(response, 201)

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        scopes = (f"repository:{repository}:pull,push",)
        response = self.request(
            "PUT", f"/v2/{repository}/manifests/{reference}", scopes, content=data, headers={"Content-Type": media_type}
        )
        self.check(response, 201)
        return response.headers.get("docker-content-digest") or "sha256:" + hashlib.sha256(data).hexdigest()


def _resumes_at(response: httpx.Response, offset: int) -> bool:
    return response.status_code == 206 and response.headers.get("content-range", "").startswith(f"bytes {offset}-")


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
