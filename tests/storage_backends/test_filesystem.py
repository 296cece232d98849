"""Filesystem-only behaviour the shared suite cannot see."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage_backends import filesystem
from storage_backends.filesystem import FilesystemBackend

MiB = 1024 * 1024


async def test_a_stream_starts_the_disk_on_each_big_piece(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writeback starts piece by piece, so a commit's fsync waits for the last piece, not for the whole blob."""
    calls: list[tuple[int, int, int]] = []

    def record(fd: int, offset: int, length: int, flags: int) -> int:
        calls.append((offset, length, flags))
        return 0

    monkeypatch.setattr(filesystem, "_sync_file_range", lambda: record)
    writer = await FilesystemBackend(str(tmp_path)).writer("a/blob")
    await writer.write(b"x" * 100)  # small: left to the page cache
    await writer.write(b"y" * (2 * MiB))
    await writer.write(b"z" * MiB)
    await writer.commit()
    assert calls == [(100, 2 * MiB, 2), (100 + 2 * MiB, MiB, 2)]
    assert (tmp_path / "a" / "blob").stat().st_size == 100 + 3 * MiB


def test_sync_file_range_is_found_on_linux() -> None:
    assert filesystem._sync_file_range() is not None
