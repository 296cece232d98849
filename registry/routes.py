"""The API's routes, by name, each with the access it needs (``registry.auth.access``), checked by one guard.
Every Location URL is built from these names (``url_for``), never by pasting strings.
Upload routes come before blob routes; ``{name:path}`` holds the slashes of a repository name."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from registry.auth.access import (
    NEEDS_CATALOG,
    NEEDS_DELETE,
    NEEDS_LOGIN,
    NEEDS_PULL,
    NEEDS_PUSH,
    NEEDS_UPLOAD_START,
    NeedOf,
)
from registry.auth.gate import Endpoint, guarded
from registry.errors import ErrorCode
from registry.handlers import blobs, catalog, manifests, referrers, tags, uploads
from registry.handlers.proxied import refusing_mirrored
from registry.proxy.config import ProxyConfig

NAME = "/v2/{name:path}"
UPLOAD = f"{NAME}/blobs/uploads/{{uuid}}"
MUTATING = frozenset({"PUT", "POST", "PATCH", "DELETE"})

# path, endpoint, method, name, the access it needs
_TABLE: list[tuple[str, Endpoint, tuple[str, ...], str, NeedOf]] = [
    ("/v2/", catalog.api_version, ("GET",), "base", NEEDS_LOGIN),
    ("/v2/_catalog", catalog.catalog, ("GET",), "catalog", NEEDS_CATALOG),
    (f"{NAME}/tags/list", tags.list_tags, ("GET",), "tags", NEEDS_PULL),
    (f"{NAME}/manifests/{{reference}}", manifests.get_manifest, ("GET", "HEAD"), "manifest", NEEDS_PULL),
    (f"{NAME}/manifests/{{reference}}", manifests.put_manifest, ("PUT",), "manifest_put", NEEDS_PUSH),
    (f"{NAME}/manifests/{{reference}}", manifests.delete_manifest, ("DELETE",), "manifest_del", NEEDS_DELETE),
    (f"{NAME}/blobs/uploads/", uploads.start_upload, ("POST",), "uploads", NEEDS_UPLOAD_START),
    (UPLOAD, uploads.upload_status, ("GET",), "upload", NEEDS_PUSH),
    (UPLOAD, uploads.patch_upload, ("PATCH",), "upload_patch", NEEDS_PUSH),
    (UPLOAD, uploads.finish_upload, ("PUT",), "upload_put", NEEDS_PUSH),
    (UPLOAD, uploads.cancel_upload, ("DELETE",), "upload_del", NEEDS_PUSH),
    (f"{NAME}/blobs/{{digest}}", blobs.get_blob, ("GET", "HEAD"), "blob", NEEDS_PULL),
    (f"{NAME}/blobs/{{digest}}", blobs.delete_blob, ("DELETE",), "blob_del", NEEDS_DELETE),
    (f"{NAME}/referrers/{{digest}}", referrers.get_referrers, ("GET",), "referrers", NEEDS_PULL),
]


def api_routes(read_only: bool = False, proxy: ProxyConfig | None = None) -> list[BaseRoute]:
    """In read-only mode no mutating handler is registered: their routes answer 405 UNSUPPORTED (after the guard,
    as distribution: a caller without access learns nothing). So do they in a repository that mirrors an upstream."""
    routes: list[BaseRoute] = []
    for path, endpoint, methods, name, need in _TABLE:
        mutating = bool(MUTATING & set(methods))
        handler = _read_only if read_only and mutating else endpoint
        handler = refusing_mirrored(handler, proxy) if proxy is not None and proxy.enabled and mutating else handler
        routes.append(Route(path, guarded(handler, need), methods=list(methods), name=name))
    return routes


async def _read_only(request: Request) -> Response:
    raise ErrorCode.UNSUPPORTED.error({"reason": "the registry is in read-only mode"})
