"""The API's routes, by name. Every Location URL is built from these names (``url_for``), never by pasting strings.
Upload routes come before blob routes; ``{name:path}`` holds the slashes of a repository name."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from registry.errors import ErrorCode
from registry.handlers import blobs, catalog, manifests, referrers, tags, uploads

NAME = "/v2/{name:path}"


MUTATING = frozenset({"PUT", "POST", "PATCH", "DELETE"})


def api_routes(read_only: bool = False) -> list[BaseRoute]:
    """In read-only mode no mutating handler is registered: their routes answer 405 UNSUPPORTED."""
    routes = _all_routes()
    if not read_only:
        return routes
    return [_refusing(r) if isinstance(r, Route) and (r.methods or set()) & MUTATING else r for r in routes]


async def _read_only(request: Request) -> Response:
    raise ErrorCode.UNSUPPORTED.error({"reason": "the registry is in read-only mode"})


def _refusing(route: Route) -> Route:
    return Route(route.path, _read_only, methods=sorted(route.methods or ()), name=route.name)


def _all_routes() -> list[BaseRoute]:
    return [
        Route("/v2/", catalog.api_version, methods=["GET"], name="base"),
        Route("/v2/_catalog", catalog.catalog, methods=["GET"], name="catalog"),
        Route(f"{NAME}/tags/list", tags.list_tags, methods=["GET"], name="tags"),
        Route(f"{NAME}/manifests/{{reference}}", manifests.get_manifest, methods=["GET", "HEAD"], name="manifest"),
        Route(f"{NAME}/manifests/{{reference}}", manifests.put_manifest, methods=["PUT"], name="manifest_put"),
        Route(f"{NAME}/manifests/{{reference}}", manifests.delete_manifest, methods=["DELETE"], name="manifest_del"),
        Route(f"{NAME}/blobs/uploads/", uploads.start_upload, methods=["POST"], name="uploads"),
        Route(f"{NAME}/blobs/uploads/{{uuid}}", uploads.upload_status, methods=["GET"], name="upload"),
        Route(f"{NAME}/blobs/uploads/{{uuid}}", uploads.patch_upload, methods=["PATCH"], name="upload_patch"),
        Route(f"{NAME}/blobs/uploads/{{uuid}}", uploads.finish_upload, methods=["PUT"], name="upload_put"),
        Route(f"{NAME}/blobs/uploads/{{uuid}}", uploads.cancel_upload, methods=["DELETE"], name="upload_del"),
        Route(f"{NAME}/blobs/{{digest}}", blobs.get_blob, methods=["GET", "HEAD"], name="blob"),
        Route(f"{NAME}/blobs/{{digest}}", blobs.delete_blob, methods=["DELETE"], name="blob_del"),
        Route(f"{NAME}/referrers/{{digest}}", referrers.get_referrers, methods=["GET"], name="referrers"),
    ]
