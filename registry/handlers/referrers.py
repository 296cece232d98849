"""``/v2/<name>/referrers/<digest>``: the manifests whose ``subject`` is a digest, as an OCI image index."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from registry.handlers.base import path_digest, repo_name, services
from registry.manifests import OCI_INDEX


async def get_referrers(request: Request) -> Response:
    name, digest = repo_name(request), path_digest(request)
    artifact_type = request.query_params.get("artifactType")
    no_match = artifact_type is not None and "\x00" in artifact_type  # no media type holds NUL; SQL may refuse it
    descriptors = [] if no_match else await services(request).manifests.referrers(name, digest, artifact_type)
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type is not None else {}
    return Response(json.dumps(body).encode(), headers=headers, media_type=OCI_INDEX)
