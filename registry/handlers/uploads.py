"""``/v2/<name>/blobs/uploads/``: open (with mount or monolithic push), continue, check, finish and cancel uploads."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import Request
from starlette.responses import Response

from registry.auth.access import PULL, REPOSITORY, Access, granted
from registry.content.uploads import upload_range
from registry.digests import Digest, check_algorithm
from registry.errors import ErrorCode, RegistryError
from registry.handlers.base import empty, is_count, query_digest, repo_name, services, url_for
from registry.names import is_valid_name

_CONTENT_RANGE_RE = re.compile(r"(?:bytes[= ])?([0-9]{1,19})-([0-9]{1,19})(?:/(?:[0-9]{1,19}|\*))?")


def _upload_headers(request: Request, name: str, upload_id: str, size: int) -> dict[str, str]:
    return {
        "Location": url_for(request, "upload", name=name, uuid=upload_id),
        "Range": upload_range(size),
        "Docker-Upload-UUID": upload_id,
    }


def _created(request: Request, name: str, digest: Digest) -> Response:
    location = url_for(request, "blob", name=name, digest=str(digest))
    return empty(201, {"Location": location, "Docker-Content-Digest": str(digest)})


async def start_upload(request: Request) -> Response:
    name = repo_name(request)
    svc = services(request)
    params = request.query_params
    algorithm = check_algorithm(params.get("digest-algorithm", "sha256"))  # end-4c: sha256 unless the client asks
    mount = _mountable(params.get("mount"))
    source = params.get("from")
    if source is not None and not is_valid_name(source):
        mount = None  # an invalid source is a failed mount: fall back to a session
    if mount is not None and await _mount(request, name, mount, source):
        return _created(request, name, mount)
    if "digest" in params:
        digest = query_digest(request)
        await svc.uploads.push(name, digest, request.stream())
        return _created(request, name, digest)
    upload_id = await svc.uploads.start(name, algorithm)
    return empty(202, _upload_headers(request, name, upload_id, 0))


async def _mount(request: Request, name: str, digest: Digest, source: str | None) -> bool:
    """Mount only from what the caller may pull: ``from`` needs pull on it; an automatic mount (no ``from``) looks
    only in the repositories the caller may pull (every one without authentication or with htpasswd)."""
    grants = granted(request)
    if source is not None and not grants.allows(Access(REPOSITORY, source, PULL)):
        return False
    sources = grants.names_with(PULL) if source is None else frozenset({source})
    return await services(request).blobs.mount(name, digest, sources, source) is not None


def _mountable(value: str | None) -> Digest | None:
    """api.md: a mount that fails on invalid arguments falls back to a plain upload session (202)."""
    if value is None:
        return None
    try:
        return Digest.parse(value)
    except RegistryError:
        return None


def _content_range(request: Request) -> tuple[int | None, int | None]:
    """The first and last byte of a ``Content-Range`` (both None without one); 416 when malformed or when it
    disagrees with ``Content-Length``."""
    header = request.headers.get("content-range")
    if header is None:
        return None, None
    match = _CONTENT_RANGE_RE.fullmatch(header.strip())
    if match is None:
        raise ErrorCode.RANGE_INVALID.error({"content_range": header})
    start, end = int(match.group(1)), int(match.group(2))
    length = request.headers.get("content-length")
    if end < start or (length is not None and is_count(length) and int(length) != end - start + 1):
        raise ErrorCode.RANGE_INVALID.error({"content_range": header, "content_length": length})
    return start, end


@asynccontextmanager
async def _session_errors(request: Request, name: str, upload_id: str) -> AsyncIterator[None]:
    """A 416 says where the session is: ``Range`` (set where it is raised) and the ``Location`` to continue at."""
    try:
        yield
    except RegistryError as err:
        if err.status == 416:
            err.headers.setdefault("Location", url_for(request, "upload", name=name, uuid=upload_id))
            err.headers.setdefault("Docker-Upload-UUID", upload_id)
        raise


async def patch_upload(request: Request) -> Response:
    name, upload_id = repo_name(request), request.path_params["uuid"]
    async with _session_errors(request, name, upload_id):
        start, end = _content_range(request)
        size = await services(request).uploads.append(name, upload_id, request.stream(), start, end)
    return empty(202, _upload_headers(request, name, upload_id, size))


async def upload_status(request: Request) -> Response:
    name, upload_id = repo_name(request), request.path_params["uuid"]
    size = await services(request).uploads.size(name, upload_id)
    return empty(204, _upload_headers(request, name, upload_id, size))


async def finish_upload(request: Request) -> Response:
    name, upload_id = repo_name(request), request.path_params["uuid"]
    uploads = services(request).uploads
    async with _session_errors(request, name, upload_id):
        try:
            digest, (start, end) = query_digest(request), _content_range(request)
        except RegistryError:
            await uploads.size(name, upload_id)  # an unknown session is 404 before anything else
            raise
        await uploads.complete(name, upload_id, digest, request.stream(), start, end)  # 404 too
    return _created(request, name, digest)


async def cancel_upload(request: Request) -> Response:
    name, upload_id = repo_name(request), request.path_params["uuid"]
    await services(request).uploads.cancel(name, upload_id)
    return empty(204, {})
