"""What every handler shares: the app's services, the checked repository name, URLs built from route names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from registry.config import Config
from registry.content.blobs import BlobStore
from registry.content.manifests import ManifestStore
from registry.content.tags import TagLists
from registry.content.uploads import UploadStore
from registry.db.engine import Database
from registry.digests import Digest
from registry.errors import ErrorCode
from registry.forwarded import base_url
from registry.names import check_name
from storage_backends import StorageBackend

if TYPE_CHECKING:
    from registry.proxy.cache import PullThrough


@dataclass
class Services:
    config: Config
    db: Database
    backend: StorageBackend
    blobs: BlobStore
    uploads: UploadStore
    manifests: ManifestStore
    tags: TagLists
    proxy: PullThrough | None = None  # the pull-through cache, when repositories mirror an upstream


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def repo_name(request: Request) -> str:
    return check_name(request.path_params["name"])


def path_digest(request: Request, key: str = "digest") -> Digest:
    return Digest.parse(request.path_params[key])


def url_for(request: Request, route: str, **params: str) -> str:
    """A Location URL from a route name: absolute from ``http.host`` or the request, or relative when configured."""
    path = str(request.app.url_path_for(route, **params))
    http = services(request).config.http
    if http.relativeurls:
        return path
    return base_url(request, http.host) + path


def is_count(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` takes superscripts), and few enough for a 64-bit count."""
    return 0 < len(text) <= 19 and text.isascii() and text.isdigit()


def query_digest(request: Request, key: str = "digest") -> Digest:
    value = request.query_params.get(key)
    if value is None:
        raise ErrorCode.DIGEST_INVALID.error({"reason": f"the {key} query parameter is required"})
    return Digest.parse(value)


def require_delete_enabled(request: Request) -> None:
    if not services(request).config.storage.delete_enabled:
        raise ErrorCode.UNSUPPORTED.error({"reason": "deletes are disabled: set storage.delete.enabled"})


def empty(status: int, headers: dict[str, str]) -> Response:
    if status in (204, 304):
        return Response(status_code=status, headers=headers)
    return Response(status_code=status, headers={"Content-Length": "0", **headers})
