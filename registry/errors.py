"""Every error the registry API can answer, registered once with its HTTP status.

    RegistryError            raised by handlers and content logic; rendered by ``error_response``
     (one per spec code: BLOB_UNKNOWN, DIGEST_INVALID, MANIFEST_INVALID, ... see ``ErrorCode``)

Handlers raise ``ErrorCode.X.error(detail)``; ``error_response`` writes
``{"errors": [{"code", "message", "detail"}]}`` with the code's status. An error may say more than its code's
message (``message=``): docker and skopeo print ``<code>: <message>`` (``denied: tag v1 in prod/app is immutable``)
and never the detail.
"""

from __future__ import annotations

import enum
import json
from typing import Any

from starlette.responses import Response

API_VERSION_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}
# every 429 and 503 says when to try again (RFC 9110 section 10.2.3), unless whatever answered it said so already
RETRY_AFTER_STATUSES = frozenset({429, 503})
RETRY_AFTER_SECONDS = "5"


class ErrorCode(enum.Enum):
    BLOB_UNKNOWN = (404, "blob unknown to registry")
    BLOB_UPLOAD_INVALID = (400, "blob upload invalid")
    BLOB_UPLOAD_UNKNOWN = (404, "blob upload unknown to registry")
    DIGEST_INVALID = (400, "provided digest did not match uploaded content")
    MANIFEST_BLOB_UNKNOWN = (400, "manifest references a manifest or blob unknown to registry")
    MANIFEST_INVALID = (400, "manifest invalid")
    MANIFEST_UNKNOWN = (404, "manifest unknown to registry")
    NAME_INVALID = (400, "invalid repository name")
    NAME_UNKNOWN = (404, "repository name not known to registry")
    SIZE_INVALID = (400, "provided length did not match content length")
    TAG_INVALID = (400, "manifest tag did not match URI")
    UNAUTHORIZED = (401, "authentication required")
    DENIED = (403, "requested access to the resource is denied")
    UNSUPPORTED = (405, "the operation is unsupported")
    TOOMANYREQUESTS = (429, "too many requests")
    RANGE_INVALID = (416, "invalid content range")
    PAGINATION_NUMBER_INVALID = (400, "invalid number of results requested")
    UNAVAILABLE = (503, "service unavailable")
    UNKNOWN = (500, "unknown error")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def message(self) -> str:
        return self.value[1]

    def error(
        self,
        detail: Any = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        message: str | None = None,
    ) -> RegistryError:
        return RegistryError(self, detail, status=status, headers=headers, message=message)


class RegistryError(Exception):
    def __init__(
        self,
        code: ErrorCode,
        detail: Any = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        message: str | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {detail}" if detail is not None else code.name)
        self.code = code
        self.detail = detail
        self.status = status or code.status
        self.headers = headers or {}
        self.message = message or code.message


def error_body(*errors: RegistryError) -> bytes:
    items = []
    for err in errors:
        item: dict[str, Any] = {"code": err.code.name, "message": err.message}
        if err.detail is not None:
            item["detail"] = err.detail
        items.append(item)
    return json.dumps({"errors": items}).encode()


def error_response(err: RegistryError, *, head: bool = False) -> Response:
    body = error_body(err)
    headers = dict(err.headers)  # the API version header is added to every response by the app's middleware
    if head:
        headers["Content-Length"] = str(len(body))
        return Response(status_code=err.status, headers=headers, media_type="application/json")
    return Response(body, status_code=err.status, headers=headers, media_type="application/json")
