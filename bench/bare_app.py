"""The bare framework limit: ``python bench/bare_app.py PORT`` serves a fixed manifest from starlette + uvicorn.

One route shaped like the registry's (``/v2/<name>/manifests/<reference>``) answers a fixed ~600-byte OCI
manifest with its content type and digest, and ``/v2/`` answers 200 for the readiness poll. uvicorn runs with the
options ``registry/cli.py`` ``_uvicorn_options`` gives our server: uvloop, httptools, no access log, proxy headers
on, no Server header, one process. No storage, database, auth or middleware: what the framework alone can answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _manifest() -> bytes:
    def descriptor(media_type: str, seed: str, size: int) -> dict[str, object]:
        return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(seed.encode()).hexdigest(), "size": size}

    layer = "application/vnd.oci.image.layer.v1.tar+gzip"
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", "config", 1469),
        "layers": [descriptor(layer, "layer1", 2_814_446), descriptor(layer, "layer2", 32_768)],
    }
    return json.dumps(doc).encode()


BODY = _manifest()
HEADERS = {"Docker-Content-Digest": "sha256:" + hashlib.sha256(BODY).hexdigest()}


async def manifest(request: Request) -> Response:
    return Response(BODY, media_type=OCI_MANIFEST, headers=HEADERS)


async def base(request: Request) -> Response:
    return Response(b"{}", media_type="application/json")


app = Starlette(
    routes=[
        Route("/v2/", base),
        Route("/v2/{name:path}/manifests/{reference}", manifest, methods=["GET", "HEAD"]),
    ]
)


def main() -> None:
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=logging.ERROR,
        proxy_headers=True,
        server_header=False,
    )


if __name__ == "__main__":
    main()
