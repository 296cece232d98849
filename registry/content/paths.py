"""Every storage path the registry uses comes from this module.

    docker/registry/v2/
    ├── blobs/<algorithm>/<first two hex digits>/<encoded>/data     content-addressed blobs, stored once per digest
    ├── uploads/<uuid>/data                                          an upload session's bytes until it completes
    ├── _health/probe                                                the storage health check's write (ours)
    └── repositories/<name>/                                         distribution's metadata (we only read it)
        ├── _layers/<algorithm>/<encoded>/link                       a blob the repository may see
        └── _manifests/
            ├── revisions/<algorithm>/<encoded>/link                 a manifest (its bytes are a blob)
            └── tags/<tag>/current/link                              the manifest a tag names
                         /index/<algorithm>/<encoded>/link           every manifest the tag ever named

The blob layout is distribution's, so a blob tree can be shared with or imported from it. Which repository may
see a blob, manifests, tags and upload sessions live in SQL (``registry.db``), never in per-process memory; the
``repositories/`` tree is what distribution keeps instead, read by ``registry import`` (``registry.content.importing``).
A link file holds a digest; every path below a repository's directory is parsed back by ``link_digest`` and
``tag_of_link``.
"""

from __future__ import annotations

from registry.digests import ALGORITHMS, Digest

ROOT = "docker/registry/v2"


def blobs_root() -> str:
    return f"{ROOT}/blobs"


def blob_dir(digest: Digest) -> str:
    return f"{ROOT}/blobs/{digest.algorithm}/{digest.encoded[:2]}/{digest.encoded}"


def blob_path(digest: Digest) -> str:
    return f"{blob_dir(digest)}/data"


def digest_of_blob_path(path: str) -> Digest | None:
    """The digest whose ``blob_path`` this is, or None for any other path (the inverse of ``blob_path``)."""
    parts = path.removeprefix(f"{blobs_root()}/").split("/")
    if len(parts) != 4 or parts[3] != "data" or parts[1] != parts[2][:2]:
        return None
    pattern = ALGORITHMS.get(parts[0])
    return Digest(parts[0], parts[2]) if pattern is not None and pattern.fullmatch(parts[2]) else None


def uploads_root() -> str:
    return f"{ROOT}/uploads"


def upload_dir(upload_id: str) -> str:
    return f"{uploads_root()}/{upload_id}"


def upload_data_path(upload_id: str) -> str:
    return f"{upload_dir(upload_id)}/data"


def health_probe_path() -> str:
    """What ``health.storagedriver`` writes each interval: a storage that takes this write takes a push."""
    return f"{ROOT}/_health/probe"


# distribution's repository tree (read-only for us)


def repositories_root() -> str:
    return f"{ROOT}/repositories"


def repository_dir(name: str) -> str:
    return f"{repositories_root()}/{name}"


def repository_name(directory: str) -> str:
    """The repository a directory under ``repositories_root()`` holds (the inverse of ``repository_dir``)."""
    return directory.removeprefix(f"{repositories_root()}/")


MANIFESTS_DIR = "_manifests"  # a directory that has one is a repository (distribution's catalog rule)


def layer_links_dir(name: str) -> str:
    return f"{repository_dir(name)}/_layers"


def manifest_revisions_dir(name: str) -> str:
    return f"{repository_dir(name)}/{MANIFESTS_DIR}/revisions"


def manifest_tags_dir(name: str) -> str:
    return f"{repository_dir(name)}/{MANIFESTS_DIR}/tags"


def tag_current_link(name: str, tag: str) -> str:
    return f"{manifest_tags_dir(name)}/{tag}/current/link"


def link_digest(path: str, directory: str) -> Digest | None:
    """The digest a ``<directory>/<algorithm>/<encoded>/link`` path names, or None for any other path."""
    parts = path.removeprefix(f"{directory}/").split("/")
    if len(parts) != 3 or parts[2] != "link":
        return None
    pattern = ALGORITHMS.get(parts[0])
    if pattern is None or not pattern.fullmatch(parts[1]):
        return None
    return Digest(parts[0], parts[1])


def tag_of_link(path: str, directory: str) -> str | None:
    """The tag a ``<directory>/<tag>/current/link`` path is the current link of, or None for any other path."""
    parts = path.removeprefix(f"{directory}/").split("/")
    return parts[0] if len(parts) == 3 and parts[1:] == ["current", "link"] else None
