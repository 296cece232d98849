"""The storage backend protocol: a small key-value file store with streaming.

Paths are relative, ``/``-separated, and never contain ``..`` (see ``clean_path``).
Every backend passes the shared suite in ``tests/storage_backends/``.
"""

from __future__ import annotations

import posixpath
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

from storage_backends.errors import InvalidPath, StorageError

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    is_dir: bool
    mtime: float


class FileWriter(Protocol):
    """Writes one file. Nothing is visible at ``path`` before ``commit``.

    A writer opened with ``append=True`` continues a file that an earlier writer ``close``d (not committed):
    that is how an upload session continues on another request, worker or replica.
    """

    @property
    def size(self) -> int: ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None:
        """Persist what was written so far so that a later writer can append; the writer is then done."""

    async def commit(self) -> None:
        """Make the whole file durable and visible at its path; the writer is then done."""

    async def cancel(self) -> None:
        """Discard everything written, including what earlier writers persisted; the writer is then done."""


class SingleUseWriter:
    """What writers share: usable until ``close``, ``commit`` or ``cancel``, and a StorageError after that."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._done = False

    def _check_open(self) -> None:
        if self._done:
            raise StorageError(self._path, "the writer is already closed")

    def _finish(self) -> None:
        self._check_open()
        self._done = True


class StorageBackend(Protocol):
    name: str
    redirects: bool  # whether redirect_url can ever give a URL

    async def get_content(self, path: str) -> bytes: ...

    async def put_content(self, path: str, data: bytes) -> None:
        """Atomically replace the content at path (durable when it returns)."""

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes (all when None) from ``offset`` in chunks of at most CHUNK_SIZE."""

    async def writer(self, path: str, append: bool = False) -> FileWriter: ...

    async def stat(self, path: str) -> FileInfo: ...

    async def list(self, path: str) -> list[str]:
        """Full paths of the direct children of a directory, sorted."""

    async def move(self, source: str, dest: str) -> None:
        """Atomically move a file, replacing dest."""

    async def delete(self, path: str) -> None:
        """Delete a file or a whole directory tree."""

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        """A URL the client may fetch the content from directly, or None to stream it through the registry."""

    def walk(self, path: str) -> AsyncIterator[FileInfo]:
        """Every file (not directory) under path, depth first, in sorted order."""

    async def close(self) -> None: ...


@runtime_checkable
class LocalFiles(Protocol):
    """A backend whose files are on this machine: a blob's bytes may leave with sendfile(2), never through Python."""

    async def open_file(self, path: str) -> BinaryIO:
        """The file at ``path``, open for reading (the caller closes it)."""


def clean_path(path: str) -> str:
    """Normalise a storage path and refuse anything that could leave the root."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        raise InvalidPath(path, "must be a non-empty relative path")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidPath(path, "empty, '.' and '..' segments are not allowed")
    return posixpath.join(*parts)
