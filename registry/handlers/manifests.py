"""``/v2/<name>/manifests/<reference>``: push, fetch (with Accept negotiation) and delete manifests and tags."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from registry.content.manifests import StoredManifest, tag_params
from registry.digests import looks_like_digest
from registry.errors import ErrorCode
from registry.handlers.base import empty, is_count, repo_name, require_delete_enabled, services, url_for
from registry.manifests import INDEX_TYPES, MANIFEST_MAX_SIZE, Descriptor, parse_manifest, select_platform


def accepted_types(request: Request) -> set[str]:
    types = set()
    for header in request.headers.getlist("accept"):
        for item in header.split(","):
            media_type = item.split(";", 1)[0].strip()
            if media_type:
                types.add(media_type)
    return types


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 13.1.2: a list of entity tags, compared weakly, or ``*``."""
    if if_none_match is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in tags or "*" in tags


async def read_manifest_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and is_count(length) and int(length) > MANIFEST_MAX_SIZE:
        raise ErrorCode.MANIFEST_INVALID.error({"limit": MANIFEST_MAX_SIZE}, status=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MANIFEST_MAX_SIZE:
            raise ErrorCode.MANIFEST_INVALID.error({"limit": MANIFEST_MAX_SIZE}, status=413)
    return bytes(body)


async def put_manifest(request: Request) -> Response:
    name, reference = repo_name(request), request.path_params["reference"]
    tags = tag_params(reference, request.query_params.getlist("tag"))  # before the body: a 414 reads nothing
    body = await read_manifest_body(request)
    content_type = request.headers.get("content-type")
    digest, parsed = await services(request).manifests.put(name, reference, body, content_type, tags)
    headers = {"Location": url_for(request, "manifest", name=name, reference=digest), "Docker-Content-Digest": digest}
    if parsed.subject is not None:
        headers["OCI-Subject"] = parsed.subject.digest
    response = empty(201, headers)
    for tag in tags:  # one OCI-Tag line per tag applied (RFC 9110 section 5: the same as one comma-separated line)
        response.headers.append("OCI-Tag", tag)
    return response


async def _negotiate(request: Request, name: str, manifest: StoredManifest) -> StoredManifest:
    """A client that does not accept an index it asked a tag for gets the index's linux/amd64 manifest."""
    accepted = accepted_types(request)
    by_digest = looks_like_digest(request.path_params["reference"])  # content fetched by digest is that content
    if by_digest or manifest.media_type not in INDEX_TYPES or not accepted or accepted & {manifest.media_type, "*/*"}:
        return manifest
    children = parse_manifest(manifest.payload, manifest.media_type).manifests
    choice: Descriptor | None = select_platform(children)
    if choice is None:
        raise ErrorCode.MANIFEST_UNKNOWN.error({"reason": "no linux/amd64 manifest in the index"})
    return await _lookup(request, name, choice.digest)


async def _lookup(request: Request, name: str, reference: str) -> StoredManifest:
    """The manifest kept here, or from the upstream when ``name`` mirrors one (``registry.proxy``)."""
    proxy = services(request).proxy
    if proxy is None:
        return await services(request).manifests.get(name, reference)
    return await proxy.manifest(name, reference)


async def get_manifest(request: Request) -> Response:
    name, reference = repo_name(request), request.path_params["reference"]
    manifest = await _lookup(request, name, reference)
    manifest = await _negotiate(request, name, manifest)
    etag = f'"{manifest.digest}"'
    headers = {"Docker-Content-Digest": manifest.digest, "ETag": etag, "Content-Type": manifest.media_type}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":
        return empty(200, {**headers, "Content-Length": str(manifest.size)})
    services(request).manifests.pulled(name, reference, manifest)
    return Response(manifest.payload, headers=headers, media_type=manifest.media_type)


async def delete_manifest(request: Request) -> Response:
    require_delete_enabled(request)
    name, reference = repo_name(request), request.path_params["reference"]
    await services(request).manifests.delete(name, reference)
    return empty(202, {})
