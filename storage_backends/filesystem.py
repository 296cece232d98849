"""Storage in a directory tree on a local filesystem; every file operation runs in a worker thread.

A writer stages its bytes in ``<dir>/.<name>.partial`` next to the final path and ``commit`` renames it into
place; ``put_content`` writes ``<dir>/.<name>.<16 hex digits>.tmp`` and renames that. Names of either shape
are hidden from ``list`` and ``walk`` and refused in paths (InvalidPath), so they can never collide with content.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import ctypes
import functools
import os
import re
import secrets
import shutil
import stat as stat_mode
from collections.abc import AsyncIterator, Callable, Iterator
from typing import BinaryIO, cast

from registry.settings import Section, Text, Value
from storage_backends.base import CHUNK_SIZE, FileInfo, FileWriter, clean_path
from storage_backends.errors import InvalidOffset, InvalidPath, PathNotFound, StorageError

DEFAULT_ROOT = "/var/lib/registry"  # distribution's
# storage.filesystem; maxthreads is distribution's limit on blocking threads: asyncio's default executor bounds ours
PARAMETERS = Section(
    {"rootdirectory": Text(DEFAULT_ROOT, always=True, check=os.path.abspath), "maxthreads": Value()}, strict=True
)

_INTERNAL_NAME = re.compile(r"\..+\.(?:partial|[0-9a-f]{16}\.tmp)")


def _is_internal(name: str) -> bool:
    return _INTERNAL_NAME.fullmatch(name) is not None


def _staging_path(target: str) -> str:
    directory, name = os.path.split(target)
    return os.path.join(directory, f".{name}.partial")


def _temp_path(target: str) -> str:
    directory, name = os.path.split(target)
    return os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")


def _child(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


@contextlib.contextmanager
def _os_errors(path: str, *, reading: bool = True) -> Iterator[None]:
    """Translate OSError; when reading, a directory or a file standing in for a directory means 'not found'."""
    missing: tuple[type[OSError], ...] = (FileNotFoundError,)
    if reading:
        missing += (NotADirectoryError, IsADirectoryError)
    try:
        yield
    except missing as exc:
        raise PathNotFound(path) from exc
    except OSError as exc:
        raise StorageError(path, exc.strerror or str(exc)) from exc


def _fsync_dir_sync(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def _fsync_dir(directory: str) -> None:
    await asyncio.to_thread(_fsync_dir_sync, directory)


def _make_dirs(directory: str) -> None:
    """``os.makedirs``, and each new directory's entry fsynced into its parent: after a power loss a committed file
    is still reachable, not only its own directory entry."""
    missing: list[str] = []
    while not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
        _fsync_dir_sync(os.path.dirname(path))


def _fsync_file(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's sync_file_range(2), or None elsewhere."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], function)


_SYNC_FILE_RANGE_WRITE = 2
_WRITE_BACK_MIN = 1024 * 1024  # a blob's stream, not a small file's few bytes


def _write_back(file: BinaryIO, data: bytes) -> None:
    """Write, and start the disk on those bytes now: the fsync at commit then waits for the last piece only,
    instead of for every byte the page cache held back (Linux starts writeback at 10% of RAM by default)."""
    start = file.tell()
    file.write(data)
    start_writeback = _sync_file_range()
    if start_writeback is not None and len(data) >= _WRITE_BACK_MIN:
        file.flush()
        start_writeback(file.fileno(), start, len(data), _SYNC_FILE_RANGE_WRITE)  # a hint: errors surface at fsync


def _sync_and_close(file: BinaryIO) -> None:
    try:
        _fsync_file(file)
    finally:
        file.close()


def _write_atomically(target: str, data: bytes) -> None:
    directory = os.path.dirname(target)
    _make_dirs(directory)
    temp = _temp_path(target)
    try:
        with open(temp, "wb") as file:
            file.write(data)
            _fsync_file(file)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir_sync(directory)


def _read_file(target: str) -> bytes:
    with open(target, "rb") as file:
        return file.read()


def _open_for_reading(target: str, path: str, offset: int) -> BinaryIO:
    file = open(target, "rb")  # noqa: SIM115 - the reader owns and closes it
    try:
        size = os.fstat(file.fileno()).st_size
        if offset > size:
            raise InvalidOffset(path, f"offset {offset} is past the end ({size} bytes)")
        file.seek(offset)
    except BaseException:
        file.close()
        raise
    return file


def _open_staging(target: str, append: bool) -> tuple[BinaryIO, int]:
    _make_dirs(os.path.dirname(target))
    file = open(_staging_path(target), "ab" if append else "wb")  # noqa: SIM115 - the writer owns it
    return file, os.fstat(file.fileno()).st_size


def _commit_staging(file: BinaryIO, staging: str, target: str) -> None:
    _sync_and_close(file)
    os.replace(staging, target)
    _fsync_dir_sync(os.path.dirname(target))


def _discard_staging(file: BinaryIO, staging: str) -> None:
    file.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(staging)


def _file_info(path: str, st: os.stat_result) -> FileInfo:
    is_dir = stat_mode.S_ISDIR(st.st_mode)
    return FileInfo(path=path, size=0 if is_dir else st.st_size, is_dir=is_dir, mtime=st.st_mtime)


def _scan(directory: str, path: str) -> list[FileInfo]:
    infos = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if _is_internal(entry.name):
                continue
            try:
                infos.append(_file_info(_child(path, entry.name), entry.stat()))
            except FileNotFoundError:
                continue
    return sorted(infos, key=lambda info: info.path)


def _move_file(source: str, dest: str, source_path: str) -> None:
    """The file is durable at ``dest`` when this returns. Its old name's removal is not synced on its own: ext4 and
    XFS journal a rename as one unit, so syncing ``dest``'s directory commits both; elsewhere a power cut could at
    worst leave the file under both names (for the registry, upload data no session owns, which the purge removes)."""
    with _os_errors(source_path):
        if stat_mode.S_ISDIR(os.stat(source).st_mode):
            raise StorageError(source_path, "is a directory; only files can be moved")
    directory = os.path.dirname(dest)
    _make_dirs(directory)
    os.replace(source, dest)
    _fsync_dir_sync(directory)


def _delete_tree(target: str) -> None:
    if stat_mode.S_ISDIR(os.lstat(target).st_mode):
        shutil.rmtree(target)
    else:
        os.unlink(target)


class _FilesystemWriter:
    def __init__(self, path: str, target: str, file: BinaryIO, size: int) -> None:
        self._path = path
        self._target = target
        self._file: BinaryIO | None = file
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes) -> None:
        file = self._open_file()
        with _os_errors(self._path, reading=False):
            await asyncio.to_thread(_write_back, file, data)
        self._size += len(data)

    async def close(self) -> None:
        file = self._finish()
        with _os_errors(self._path, reading=False):
            await asyncio.to_thread(_sync_and_close, file)

    async def commit(self) -> None:
        file = self._finish()
        with _os_errors(self._path, reading=False):
            await asyncio.to_thread(_commit_staging, file, _staging_path(self._target), self._target)

    async def cancel(self) -> None:
        file = self._finish()
        with _os_errors(self._path, reading=False):
            await asyncio.to_thread(_discard_staging, file, _staging_path(self._target))

    def _open_file(self) -> BinaryIO:
        if self._file is None:
            raise StorageError(self._path, "the writer is already closed")
        return self._file

    def _finish(self) -> BinaryIO:
        file = self._open_file()
        self._file = None
        return file


class FilesystemBackend:
    name = "filesystem"
    redirects = False

    def __init__(self, rootdirectory: str, maxthreads: object = None) -> None:
        self._root = os.path.abspath(rootdirectory)

    def _resolve(self, path: str) -> str:
        parts = path.split("/") if path else []
        if any(_is_internal(part) for part in parts):
            raise InvalidPath(path, "names of the form '.<name>.partial' and '.<name>.<hex>.tmp' are reserved")
        return os.path.join(self._root, *parts)

    def _locate(self, path: str) -> tuple[str, str]:
        cleaned = clean_path(path)
        return cleaned, self._resolve(cleaned)

    async def get_content(self, path: str) -> bytes:
        cleaned, target = self._locate(path)
        with _os_errors(cleaned):
            return await asyncio.to_thread(_read_file, target)

    async def put_content(self, path: str, data: bytes) -> None:
        cleaned, target = self._locate(path)
        with _os_errors(cleaned, reading=False):
            await asyncio.to_thread(_write_atomically, target, data)

    async def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        cleaned, target = self._locate(path)
        if offset < 0 or (length is not None and length < 0):
            raise InvalidOffset(cleaned, f"negative offset {offset} or length {length}")
        with _os_errors(cleaned):
            file = await asyncio.to_thread(_open_for_reading, target, cleaned, offset)
        try:
            remaining = length
            while remaining is None or remaining > 0:
                wanted = CHUNK_SIZE if remaining is None else min(remaining, CHUNK_SIZE)
                chunk = await asyncio.to_thread(file.read, wanted)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(file.close)

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        cleaned, target = self._locate(path)
        with _os_errors(cleaned, reading=False):
            file, size = await asyncio.to_thread(_open_staging, target, append)
        return _FilesystemWriter(cleaned, target, file, size)

    async def stat(self, path: str) -> FileInfo:
        cleaned, target = self._locate(path)
        with _os_errors(cleaned):
            return _file_info(cleaned, await asyncio.to_thread(os.stat, target))

    async def list(self, path: str) -> builtins.list[str]:
        return [info.path for info in await self._children(self._clean_dir(path))]

    async def move(self, source: str, dest: str) -> None:
        source_path, source_target = self._locate(source)
        dest_path, dest_target = self._locate(dest)
        with _os_errors(dest_path, reading=False):
            await asyncio.to_thread(_move_file, source_target, dest_target, source_path)

    async def delete(self, path: str) -> None:
        cleaned, target = self._locate(path)
        with _os_errors(cleaned):
            await asyncio.to_thread(_delete_tree, target)

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        self._locate(path)
        return None

    async def open_file(self, path: str) -> BinaryIO:
        cleaned, target = self._locate(path)
        with _os_errors(cleaned):
            return await asyncio.to_thread(_open_for_reading, target, cleaned, 0)

    async def walk(self, path: str) -> AsyncIterator[FileInfo]:
        pending = (await self._children(self._clean_dir(path)))[::-1]
        while pending:
            info = pending.pop()
            if not info.is_dir:
                yield info
                continue
            with contextlib.suppress(PathNotFound):  # deleted while we walked
                pending.extend(reversed(await self._children(info.path)))

    async def close(self) -> None:
        return None

    def _clean_dir(self, path: str) -> str:
        return clean_path(path) if path else ""

    async def _children(self, path: str) -> builtins.list[FileInfo]:
        try:
            with _os_errors(path):
                return await asyncio.to_thread(_scan, self._resolve(path), path)
        except PathNotFound:
            if path:
                raise
            return []  # the root is created by the first write
