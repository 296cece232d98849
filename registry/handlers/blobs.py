"""``/v2/<name>/blobs/<digest>``: fetch (GET, HEAD, with Range) and delete a blob."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from registry.errors import ErrorCode, RegistryError
from registry.handlers.base import empty, path_digest, repo_name, require_delete_enabled, services
from registry.handlers.proxied import missing_blob
from registry.handlers.sendfile import SendfileResponse
from registry.protocol import ZEROCOPY

SMALL_BLOB = 256 * 1024  # read in one piece: one storage call instead of a stream's open, reads and close
_RANGE_RE = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})")


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(start, end)`` inclusive for a single satisfiable byte range, None for a header we ignore (RFC 9110)."""
    match = _RANGE_RE.fullmatch(header.strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size - 1
        if int(last) == 0:
            raise _unsatisfiable(size)
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return None
    if start >= size:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> Exception:
    return ErrorCode.RANGE_INVALID.error({"size": size}, headers={"Content-Range": f"bytes */{size}"})


async def started(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` with the first one already read: storage failing there is still a 503, not a 200 cut short."""
    first = await anext(chunks, None)

    async def stream() -> AsyncIterator[bytes]:
        if first is not None:
            yield first
        async for chunk in chunks:
            yield chunk

    return stream()


async def get_blob(request: Request) -> Response:
    name, digest = repo_name(request), path_digest(request)
    blobs = services(request).blobs
    try:
        size = await blobs.size(name, digest)
    except RegistryError as unknown:
        answer = await missing_blob(request, name, digest, unknown)  # from the upstream, when name mirrors one
        if answer is not None:
            return answer
        size = await blobs.size(name, digest)
    headers = {"Docker-Content-Digest": str(digest), "ETag": f'"{digest}"', "Accept-Ranges": "bytes"}
    if request.method == "HEAD":
        await blobs.touch(digest)  # a push asking whether to upload may name the blob in a manifest next
        return empty(200, {**headers, "Content-Length": str(size), "Content-Type": "application/octet-stream"})
    if not services(request).config.storage.redirect_disabled:
        url = await blobs.redirect_url(digest, request.method)
        if url is not None:
            blobs.pulled(name, digest, size)
            return RedirectResponse(url, status_code=307, headers=headers)
    byte_range = parse_range(request.headers["range"], size) if "range" in request.headers else None
    if byte_range is None or byte_range[0] == 0:  # a download's later ranges are the same pull
        blobs.pulled(name, digest, size)
    if byte_range is None and size <= SMALL_BLOB:
        return Response(await blobs.read_small(digest), headers=headers, media_type="application/octet-stream")
    start, end = byte_range or (0, size - 1)
    status = 200 if byte_range is None else 206
    if byte_range is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    file = await blobs.open_local(digest) if ZEROCOPY in request.scope.get("extensions", {}) else None
    if file is not None:  # the server sends it with sendfile(2): zero copies, no Python per chunk
        return SendfileResponse(file, start, end - start + 1, status, headers)
    body = await started(blobs.read(digest, start, end - start + 1) if byte_range else blobs.read(digest))
    return StreamingResponse(body, status_code=status, headers=headers, media_type="application/octet-stream")


async def delete_blob(request: Request) -> Response:
    require_delete_enabled(request)
    name, digest = repo_name(request), path_digest(request)
    await services(request).blobs.unlink(name, digest)
    return empty(202, {"Docker-Content-Digest": str(digest)})
