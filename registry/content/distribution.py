"""Reading distribution's repository tree (``registry.content.paths`` draws it): the repositories, and each one's
blob links, manifest revisions and tags, streamed as they are listed. Nothing here writes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from registry.content import paths
from registry.digests import Digest
from registry.errors import RegistryError
from registry.manifests import MANIFEST_MAX_SIZE
from storage_backends.base import StorageBackend
from storage_backends.errors import PathNotFound


@dataclass(frozen=True)
class TagLink:
    tag: str
    path: str
    mtime: float  # when distribution last wrote it: when the tag was last pushed


async def holds_repositories(backend: StorageBackend) -> bool:
    """Whether distribution wrote any repository here (one listing)."""
    try:
        return bool(await backend.list(paths.repositories_root()))
    except PathNotFound:
        return False


async def repositories(backend: StorageBackend) -> AsyncIterator[str]:
    """Every repository (a directory with ``_manifests``, distribution's catalog rule), in name order, listed one
    directory at a time: nested repositories (``a`` and ``a/b``) are both found."""
    pending = [paths.repositories_root()]
    while pending:
        directory = pending.pop()
        children = await _list(backend, directory)
        names = [child.rsplit("/", 1)[-1] for child in children]
        if paths.MANIFESTS_DIR in names and directory != paths.repositories_root():
            yield paths.repository_name(directory)
        pending.extend(child for child in reversed(children) if not child.rsplit("/", 1)[-1].startswith("_"))


async def _list(backend: StorageBackend, directory: str) -> list[str]:
    try:
        return await backend.list(directory)
    except PathNotFound:  # removed while we walked, or a file where a directory was expected
        return []


async def linked_digests(backend: StorageBackend, directory: str) -> AsyncIterator[Digest]:
    """The digests of the ``<algorithm>/<encoded>/link`` files under ``directory`` (blob links, revisions): a
    directory left without its link (distribution deletes the file, not always the directory) names nothing."""
    with contextlib.suppress(PathNotFound):
        async for info in backend.walk(directory):
            digest = paths.link_digest(info.path, directory)
            if digest is not None:
                yield digest


async def tag_links(backend: StorageBackend, repo: str) -> AsyncIterator[TagLink]:
    directory = paths.manifest_tags_dir(repo)
    with contextlib.suppress(PathNotFound):
        async for info in backend.walk(directory):
            tag = paths.tag_of_link(info.path, directory)
            if tag is not None:
                yield TagLink(tag, info.path, info.mtime)


async def read_link(backend: StorageBackend, path: str) -> Digest | None:
    """The digest a link file holds, or None when it is gone or holds no valid digest."""
    try:
        text = (await backend.get_content(path)).decode("ascii", "replace").strip()
        return Digest.parse(text)
    except (PathNotFound, RegistryError):  # gone, or garbage in the file (DIGEST_INVALID)
        return None


async def read_capped(backend: StorageBackend, path: str, cap: int = MANIFEST_MAX_SIZE) -> bytes | None:
    """A blob's bytes, up to ``cap`` and one byte more (so that a longer one shows); None when it is missing."""
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in backend.reader(path):
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                break
    except PathNotFound:
        return None
    return b"".join(chunks)
