"""What the API does for a repository that mirrors an upstream (``registry.proxy``): a blob not kept yet is fetched
and streamed as it arrives, and pushes are refused unless the upstream's section allows them (distribution answers
405 UNSUPPORTED to a push into a pull-through cache)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from registry.auth.gate import Endpoint
from registry.digests import Digest
from registry.errors import ErrorCode, RegistryError
from registry.handlers.base import empty, services
from registry.proxy.config import ProxyConfig


async def missing_blob(request: Request, name: str, digest: Digest, unknown: RegistryError) -> Response | None:
    """The answer for a blob ``name`` does not hold: from the upstream when ``name`` mirrors one (None once the blob is
    kept, for a range request to be served from storage); else ``unknown`` is raised again."""
    proxy = services(request).proxy
    if unknown.code is not ErrorCode.BLOB_UNKNOWN or proxy is None or proxy.route(name) is None:
        raise unknown
    headers = {"Docker-Content-Digest": str(digest), "ETag": f'"{digest}"', "Accept-Ranges": "bytes"}
    if request.method == "HEAD":
        found = await proxy.blob_size(name, digest)
        return empty(200, {**headers, "Content-Length": str(found), "Content-Type": "application/octet-stream"})
    if "range" in request.headers:
        await proxy.keep_blob(name, digest)
        return None
    size, body = await proxy.blob(name, digest)
    if size is not None:
        headers["Content-Length"] = str(size)
        services(request).blobs.pulled(name, digest, size)
    return StreamingResponse(body, headers=headers, media_type="application/octet-stream")


def refusing_mirrored(endpoint: Endpoint, proxy: ProxyConfig) -> Endpoint:
    """``endpoint``, refused with 405 UNSUPPORTED in a repository that mirrors an upstream not taking pushes."""

    async def endpoint_unless_mirrored(request: Request) -> Response:
        found = proxy.find(request.path_params.get("name", ""))
        if found is not None and not found[0].pushes:
            reason = f"{request.path_params['name']} is a pull-through cache of {found[0].remoteurl}"
            raise ErrorCode.UNSUPPORTED.error({"reason": reason})
        return await endpoint(request)

    return endpoint_unless_mirrored
