"""The storage backend, measured: every call's latency and failures, by driver and action, whatever the driver.

``measured(backend)`` wraps the backend once where the app makes it, so no driver knows about metrics. A stream
(``reader``, ``walk``) is one observation: the time spent waiting on the backend for its chunks, not the time the
consumer took. ``PathNotFound`` is the backend's answer to a question (a blob HEAD that misses), not a failure.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO, TypeVar

from registry.events.metrics import STORAGE_ERRORS, STORAGE_SECONDS
from storage_backends import FileInfo, FileWriter, LocalFiles, PathNotFound, StorageBackend

_T = TypeVar("_T")
ACTIONS: tuple[str, ...] = ("get_content", "put_content", "read", "writer", "write", "close", "commit", "cancel")
ACTIONS += ("stat", "list", "move", "delete", "redirect_url", "walk", "open_file")


class _Action:
    __slots__ = ("fail", "observe")

    def __init__(self, driver: str, action: str) -> None:
        self.observe: Callable[[float], None] = STORAGE_SECONDS.labels(driver, action).observe
        self.fail: Callable[[], None] = STORAGE_ERRORS.labels(driver, action).inc

    @contextmanager
    def counting_failures(self) -> Iterator[None]:
        """Counts what raises inside as a failure, but PathNotFound (an answer) and the end of a stream."""
        try:
            yield
        except (PathNotFound, StopAsyncIteration):
            raise
        except Exception:
            self.fail()
            raise

    async def call(self, work: Awaitable[_T]) -> _T:
        started = time.perf_counter()
        try:
            with self.counting_failures():
                return await work
        finally:
            self.observe(time.perf_counter() - started)

    async def stream(self, chunks: AsyncIterator[_T]) -> AsyncIterator[_T]:
        waited = 0.0
        try:
            while True:
                started = time.perf_counter()
                try:
                    with self.counting_failures():
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                finally:
                    waited += time.perf_counter() - started
                yield chunk
        finally:
            self.observe(waited)
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()


def _actions(driver: str) -> dict[str, _Action]:
    return {action: _Action(driver, action) for action in ACTIONS}


class MeasuredWriter:
    def __init__(self, writer: FileWriter, actions: dict[str, _Action]) -> None:
        self._writer = writer
        self._actions = actions

    @property
    def size(self) -> int:
        return self._writer.size

    async def write(self, data: bytes) -> None:
        await self._actions["write"].call(self._writer.write(data))

    async def close(self) -> None:
        await self._actions["close"].call(self._writer.close())

    async def commit(self) -> None:
        await self._actions["commit"].call(self._writer.commit())

    async def cancel(self) -> None:
        await self._actions["cancel"].call(self._writer.cancel())


class MeasuredBackend:
    """A ``StorageBackend`` that measures the one it wraps."""

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend
        self.name = backend.name
        self.redirects = backend.redirects
        self._actions = _actions(backend.name)

    async def get_content(self, path: str) -> bytes:
        return await self._actions["get_content"].call(self.backend.get_content(path))

    async def put_content(self, path: str, data: bytes) -> None:
        await self._actions["put_content"].call(self.backend.put_content(path, data))

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self._actions["read"].stream(self.backend.reader(path, offset, length))

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        writer = await self._actions["writer"].call(self.backend.writer(path, append))
        return MeasuredWriter(writer, self._actions)

    async def stat(self, path: str) -> FileInfo:
        return await self._actions["stat"].call(self.backend.stat(path))

    async def list(self, path: str) -> list[str]:
        return await self._actions["list"].call(self.backend.list(path))

    async def move(self, source: str, dest: str) -> None:
        await self._actions["move"].call(self.backend.move(source, dest))

    async def delete(self, path: str) -> None:
        await self._actions["delete"].call(self.backend.delete(path))

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        return await self._actions["redirect_url"].call(self.backend.redirect_url(path, method))

    def walk(self, path: str) -> AsyncIterator[FileInfo]:
        return self._actions["walk"].stream(self.backend.walk(path))

    async def close(self) -> None:
        await self.backend.close()


class MeasuredLocalBackend(MeasuredBackend):
    """The same for a backend whose files are on this machine: blob GETs keep their sendfile(2)."""

    async def open_file(self, path: str) -> BinaryIO:
        assert isinstance(self.backend, LocalFiles)
        return await self._actions["open_file"].call(self.backend.open_file(path))


def measured(backend: StorageBackend) -> StorageBackend:
    if isinstance(backend, MeasuredBackend):
        return backend
    return MeasuredLocalBackend(backend) if isinstance(backend, LocalFiles) else MeasuredBackend(backend)
