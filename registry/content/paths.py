"""Every storage path the registry uses comes from this module.

    docker/registry/v2/
    ├── blobs/<algorithm>/<first two hex digits>/<encoded>/data     content-addressed blobs, stored once per digest
    └── uploads/<uuid>/data                                          an upload session's bytes until it completes

The blob layout is distribution's, so a blob tree can be shared with or imported from it. Which repository may
see a blob, manifests, tags and upload sessions live in SQL (``registry.db``), never in per-process memory.
"""

from __future__ import annotations

from registry.digests import Digest

ROOT = "docker/registry/v2"


def blob_dir(digest: Digest) -> str:
    return f"{ROOT}/blobs/{digest.algorithm}/{digest.encoded[:2]}/{digest.encoded}"


def blob_path(digest: Digest) -> str:
    return f"{blob_dir(digest)}/data"


def uploads_root() -> str:
    return f"{ROOT}/uploads"


def upload_dir(upload_id: str) -> str:
    return f"{uploads_root()}/{upload_id}"


def upload_data_path(upload_id: str) -> str:
    return f"{upload_dir(upload_id)}/data"
