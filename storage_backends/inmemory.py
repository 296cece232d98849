"""Storage in process memory, for tests. Directories are implied by the paths of committed files.

Writers stage their bytes in a dict of their own, so nothing is visible before ``commit``.
"""

from __future__ import annotations

import builtins
import time
from bisect import bisect_left, insort
from collections.abc import AsyncIterator
from dataclasses import dataclass

from registry.settings import Section
from storage_backends.base import CHUNK_SIZE, FileInfo, FileWriter, SingleUseWriter, clean_path
from storage_backends.errors import InvalidOffset, PathNotFound, StorageError


@dataclass(frozen=True)
class _File:
    data: bytes
    mtime: float


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:end]) for end in range(1, len(parts))]


def _segments(path: str) -> list[str]:
    return path.split("/")


class _InMemoryWriter(SingleUseWriter):
    def __init__(self, backend: InMemoryBackend, path: str, staged: bytearray) -> None:
        super().__init__(path)
        self._backend = backend
        self._staged = staged

    @property
    def size(self) -> int:
        return len(self._staged)

    async def write(self, data: bytes) -> None:
        self._check_open()
        self._staged += data

    async def close(self) -> None:
        self._finish()

    async def commit(self) -> None:
        self._finish()
        self._backend._commit_staged(self._path, self._staged)

    async def cancel(self) -> None:
        self._finish()
        if self._backend._staging.get(self._path) is self._staged:
            del self._backend._staging[self._path]


PARAMETERS = Section({}, strict=True)  # storage.inmemory takes no parameter


class InMemoryBackend:
    name = "inmemory"
    redirects = False

    def __init__(self) -> None:
        self._files: dict[str, _File] = {}
        self._sorted_paths: builtins.list[str] = []
        self._staging: dict[str, bytearray] = {}

    async def get_content(self, path: str) -> bytes:
        return self._file(clean_path(path)).data

    async def put_content(self, path: str, data: bytes) -> None:
        cleaned = clean_path(path)
        self._check_creatable(cleaned)
        self._store(cleaned, _File(bytes(data), time.time()))

    async def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        cleaned = clean_path(path)
        data = self._file(cleaned).data
        if offset < 0 or (length is not None and length < 0) or offset > len(data):
            raise InvalidOffset(cleaned, f"offset {offset} and length {length} do not fit {len(data)} bytes")
        end = len(data) if length is None else min(len(data), offset + length)
        for start in range(offset, end, CHUNK_SIZE):
            yield data[start : min(start + CHUNK_SIZE, end)]

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        cleaned = clean_path(path)
        self._check_parents(cleaned)
        staged = self._staging.get(cleaned) if append else None
        if staged is None:
            staged = self._staging[cleaned] = bytearray()
        return _InMemoryWriter(self, cleaned, staged)

    async def stat(self, path: str) -> FileInfo:
        cleaned = clean_path(path)
        if cleaned in self._files:
            file = self._files[cleaned]
            return FileInfo(path=cleaned, size=len(file.data), is_dir=False, mtime=file.mtime)
        below = self._paths_below(cleaned)
        if not below:
            raise PathNotFound(cleaned)
        return FileInfo(path=cleaned, size=0, is_dir=True, mtime=max(self._files[p].mtime for p in below))

    async def list(self, path: str) -> builtins.list[str]:
        directory = self._directory(path)
        start = len(directory) + 1 if directory else 0
        children = {p[start:].split("/", 1)[0] for p in self._paths_below(directory)}
        return sorted(f"{directory}/{child}" if directory else child for child in children)

    async def move(self, source: str, dest: str) -> None:
        source_path, dest_path = clean_path(source), clean_path(dest)
        if self._is_directory(source_path):
            raise StorageError(source_path, "is a directory; only files can be moved")
        file = self._file(source_path)
        self._check_creatable(dest_path)
        self._remove(source_path)
        self._store(dest_path, file)

    async def delete(self, path: str) -> None:
        cleaned = clean_path(path)
        doomed = [cleaned] if cleaned in self._files else self._paths_below(cleaned)
        if not doomed:
            raise PathNotFound(cleaned)
        for doomed_path in doomed:
            self._remove(doomed_path)
        for staged_path in [p for p in self._staging if p.startswith(cleaned + "/")]:
            del self._staging[staged_path]

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        clean_path(path)
        return None

    async def walk(self, path: str) -> AsyncIterator[FileInfo]:
        for file_path in sorted(self._paths_below(self._directory(path)), key=_segments):
            file = self._files.get(file_path)
            if file is not None:  # not deleted while we walked
                yield FileInfo(path=file_path, size=len(file.data), is_dir=False, mtime=file.mtime)

    async def close(self) -> None:
        return None

    def _commit_staged(self, path: str, staged: bytearray) -> None:
        if self._staging.get(path) is not staged:
            raise PathNotFound(path, "the staged data was deleted")
        self._check_creatable(path)
        del self._staging[path]
        self._store(path, _File(bytes(staged), time.time()))

    def _file(self, path: str) -> _File:
        try:
            return self._files[path]
        except KeyError:
            raise PathNotFound(path) from None

    def _directory(self, path: str) -> str:
        directory = clean_path(path) if path else ""
        if directory and not self._is_directory(directory):
            raise PathNotFound(directory, "not a directory")
        return directory

    def _paths_below(self, directory: str) -> builtins.list[str]:
        if not directory:
            return self._sorted_paths[:]
        low = bisect_left(self._sorted_paths, directory + "/")
        high = bisect_left(self._sorted_paths, directory + "0")  # "0" sorts right after "/"
        return self._sorted_paths[low:high]

    def _is_directory(self, path: str) -> bool:
        index = bisect_left(self._sorted_paths, path + "/")
        return index < len(self._sorted_paths) and self._sorted_paths[index].startswith(path + "/")

    def _check_parents(self, path: str) -> None:
        for ancestor in _ancestors(path):
            if ancestor in self._files:
                raise StorageError(path, f"{ancestor} is a file")

    def _check_creatable(self, path: str) -> None:
        self._check_parents(path)
        if self._is_directory(path):
            raise StorageError(path, "is a directory")

    def _store(self, path: str, file: _File) -> None:
        if path not in self._files:
            insort(self._sorted_paths, path)
        self._files[path] = file

    def _remove(self, path: str) -> None:
        del self._files[path]
        del self._sorted_paths[bisect_left(self._sorted_paths, path)]
