"""The shared storage backend suite: every test runs against every backend of ``conftest.BACKEND_NAMES``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from storage_backends import (
    BACKENDS,
    CHUNK_SIZE,
    FileWriter,
    InvalidOffset,
    InvalidPath,
    PathNotFound,
    StorageBackend,
    StorageError,
    create_backend,
)
from storage_backends.filesystem import FilesystemBackend
from storage_backends.inmemory import InMemoryBackend
from tests.storage_backends.conftest import assert_clean_after, files_on_disk

MIB = 1024 * 1024


def pattern(size: int, seed: int = 0) -> bytes:
    block = bytes((seed + i * 7) % 251 for i in range(4096))
    return (block * (size // len(block) + 1))[:size]


async def read_all(backend: StorageBackend, path: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in backend.reader(path, offset, length)])


async def walked(backend: StorageBackend, path: str) -> list[str]:
    return [info.path async for info in backend.walk(path)]


async def drain(iterator: AsyncIterator[Any]) -> None:
    async for _ in iterator:
        pass


async def staged(backend: StorageBackend, path: str, *parts: bytes, append: bool = False) -> FileWriter:
    writer = await backend.writer(path, append=append)
    for part in parts:
        await writer.write(part)
    return writer


# --- put_content / get_content ---


async def test_put_then_get_round_trips(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"hello world")
    assert await backend.get_content(f"{prefix}/blob") == b"hello world"


async def test_put_replaces_existing_content(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"a much longer first version")
    await backend.put_content(f"{prefix}/blob", b"short")
    assert await backend.get_content(f"{prefix}/blob") == b"short"
    assert await backend.list(prefix) == [f"{prefix}/blob"]


async def test_put_creates_parent_directories(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/a/b/c/blob", b"x")
    info = await backend.stat(f"{prefix}/a/b")
    assert info.is_dir


async def test_empty_file_round_trips(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/empty", b"")
    assert await backend.get_content(f"{prefix}/empty") == b""
    assert (await backend.stat(f"{prefix}/empty")).size == 0
    assert await read_all(backend, f"{prefix}/empty") == b""


async def test_every_byte_value_round_trips(backend: StorageBackend, prefix: str) -> None:
    data = bytes(range(256)) * 3
    await backend.put_content(f"{prefix}/binary", data)
    assert await backend.get_content(f"{prefix}/binary") == data


async def test_registry_style_names_round_trip(backend: StorageBackend, prefix: str) -> None:
    path = f"{prefix}/blobs/sha256:ab/cd+ef@1_2-3.x~y/data"
    await backend.put_content(path, b"x")
    assert await backend.get_content(path) == b"x"


async def test_concurrent_puts_to_one_path_leave_one_whole_version(backend: StorageBackend, prefix: str) -> None:
    versions = [pattern(64 * 1024, seed) for seed in range(8)]
    await asyncio.gather(*(backend.put_content(f"{prefix}/blob", v) for v in versions))
    assert await backend.get_content(f"{prefix}/blob") in versions
    assert await backend.list(prefix) == [f"{prefix}/blob"]


async def test_get_missing_raises_path_not_found(backend: StorageBackend, prefix: str) -> None:
    with pytest.raises(PathNotFound):
        await backend.get_content(f"{prefix}/missing")


async def test_get_directory_raises_path_not_found(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/dir/blob", b"x")
    with pytest.raises(PathNotFound):
        await backend.get_content(f"{prefix}/dir")


async def test_get_below_a_file_raises_path_not_found(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"x")
    with pytest.raises(PathNotFound):
        await backend.get_content(f"{prefix}/blob/child")


async def test_put_below_a_file_raises_storage_error(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"x")
    with pytest.raises(StorageError):
        await backend.put_content(f"{prefix}/blob/child", b"y")
    assert await backend.get_content(f"{prefix}/blob") == b"x"


async def test_put_onto_a_directory_raises_storage_error(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/dir/blob", b"x")
    with pytest.raises(StorageError):
        await backend.put_content(f"{prefix}/dir", b"y")
    assert await walked(backend, prefix) == [f"{prefix}/dir/blob"]


# --- path validation ---

PathOperation = Callable[[StorageBackend, str], Awaitable[object]]

FILE_OPERATIONS: dict[str, PathOperation] = {
    "get_content": lambda b, p: b.get_content(p),
    "put_content": lambda b, p: b.put_content(p, b"x"),
    "reader": lambda b, p: drain(b.reader(p)),
    "writer": lambda b, p: b.writer(p),
    "stat": lambda b, p: b.stat(p),
    "move_source": lambda b, p: b.move(p, "never/created"),
    "move_dest": lambda b, p: b.move("never/created", p),
    "delete": lambda b, p: b.delete(p),
    "redirect_url": lambda b, p: b.redirect_url(p),
}
DIRECTORY_OPERATIONS: dict[str, PathOperation] = {
    "list": lambda b, p: b.list(p),
    "walk": lambda b, p: drain(b.walk(p)),
}
INVALID_PATHS = ["/absolute", "..", "a/../b", "a/..", "./a", "a/./b", "a//b", "a/", "a\\b", "a\x00b"]


@pytest.mark.parametrize("bad_path", INVALID_PATHS)
@pytest.mark.parametrize("operation", [*FILE_OPERATIONS, *DIRECTORY_OPERATIONS])
async def test_invalid_path_raises_invalid_path(backend: StorageBackend, operation: str, bad_path: str) -> None:
    call = {**FILE_OPERATIONS, **DIRECTORY_OPERATIONS}[operation]
    with pytest.raises(InvalidPath):
        await call(backend, bad_path)


@pytest.mark.parametrize("operation", FILE_OPERATIONS)
async def test_empty_path_is_invalid_for_file_operations(backend: StorageBackend, operation: str) -> None:
    with pytest.raises(InvalidPath):
        await FILE_OPERATIONS[operation](backend, "")


async def test_empty_path_lists_and_walks_the_root(backend: StorageBackend, prefix: str) -> None:
    assert await backend.list("") == []
    assert await walked(backend, "") == []
    await backend.put_content(f"{prefix}/blob", b"x")
    assert await backend.list("") == [prefix]
    assert await walked(backend, "") == [f"{prefix}/blob"]


# --- reader ---


async def test_reader_streams_the_whole_file(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"0123456789")
    assert await read_all(backend, f"{prefix}/blob") == b"0123456789"


async def test_reader_starts_at_offset(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"0123456789")
    assert await read_all(backend, f"{prefix}/blob", offset=4) == b"456789"


async def test_reader_returns_length_bytes_from_offset(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"0123456789")
    assert await read_all(backend, f"{prefix}/blob", offset=2, length=5) == b"23456"


async def test_reader_length_past_the_end_stops_at_the_end(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"0123456789")
    assert await read_all(backend, f"{prefix}/blob", offset=8, length=100) == b"89"


async def test_reader_zero_length_yields_nothing(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"0123456789")
    assert [chunk async for chunk in backend.reader(f"{prefix}/blob", 3, 0)] == []


async def test_reader_offset_equal_to_size_yields_nothing(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"0123456789")
    assert [chunk async for chunk in backend.reader(f"{prefix}/blob", 10)] == []


async def test_reader_offset_past_size_raises_invalid_offset(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"0123456789")
    with pytest.raises(InvalidOffset):
        await read_all(backend, f"{prefix}/blob", offset=11)


@pytest.mark.parametrize(("offset", "length"), [(-1, None), (0, -1)])
async def test_reader_negative_offset_or_length_raises_invalid_offset(
    backend: StorageBackend, prefix: str, offset: int, length: int | None
) -> None:
    await backend.put_content(f"{prefix}/blob", b"0123456789")
    with pytest.raises(InvalidOffset):
        await read_all(backend, f"{prefix}/blob", offset, length)


async def test_reader_of_missing_file_raises_path_not_found(backend: StorageBackend, prefix: str) -> None:
    with pytest.raises(PathNotFound):
        await read_all(backend, f"{prefix}/missing")


async def test_reader_of_directory_raises_path_not_found(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/dir/blob", b"x")
    with pytest.raises(PathNotFound):
        await read_all(backend, f"{prefix}/dir")


async def test_reader_yields_chunks_of_at_most_chunk_size_in_order(backend: StorageBackend, prefix: str) -> None:
    data = pattern(5 * MIB + 123)
    await backend.put_content(f"{prefix}/big", data)
    chunks = [chunk async for chunk in backend.reader(f"{prefix}/big")]
    assert all(0 < len(chunk) <= CHUNK_SIZE for chunk in chunks)
    assert len(chunks) >= 6
    assert b"".join(chunks) == data


async def test_reader_at_unaligned_offset_of_large_file(backend: StorageBackend, prefix: str) -> None:
    data = pattern(3 * MIB)
    await backend.put_content(f"{prefix}/big", data)
    chunks = [chunk async for chunk in backend.reader(f"{prefix}/big", MIB + 17, MIB + 5)]
    assert all(len(chunk) <= CHUNK_SIZE for chunk in chunks)
    assert b"".join(chunks) == data[MIB + 17 : 2 * MIB + 22]


async def test_reader_closed_early_can_be_abandoned(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/big", pattern(3 * MIB))
    chunks = backend.reader(f"{prefix}/big")
    first = await anext(chunks)
    await chunks.aclose()  # type: ignore[attr-defined]
    assert len(first) == CHUNK_SIZE


# --- writer ---


async def test_writer_output_is_invisible_before_commit(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/dir/other", b"o")
    writer = await staged(backend, f"{prefix}/dir/blob", b"partial data")
    with pytest.raises(PathNotFound):
        await backend.stat(f"{prefix}/dir/blob")
    with pytest.raises(PathNotFound):
        await backend.get_content(f"{prefix}/dir/blob")
    assert await backend.list(f"{prefix}/dir") == [f"{prefix}/dir/other"]
    assert await walked(backend, prefix) == [f"{prefix}/dir/other"]
    await writer.cancel()


async def test_closed_writer_output_is_invisible(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/dir/other", b"o")
    writer = await staged(backend, f"{prefix}/dir/blob", b"partial data")
    await writer.close()
    with pytest.raises(PathNotFound):
        await backend.stat(f"{prefix}/dir/blob")
    assert await backend.list(f"{prefix}/dir") == [f"{prefix}/dir/other"]
    assert await walked(backend, "") == [f"{prefix}/dir/other"]
    await (await backend.writer(f"{prefix}/dir/blob", append=True)).cancel()


async def test_writer_commit_makes_the_file_visible(backend: StorageBackend, prefix: str) -> None:
    writer = await staged(backend, f"{prefix}/blob", b"hello ", b"world")
    assert writer.size == 11
    await writer.commit()
    assert await backend.get_content(f"{prefix}/blob") == b"hello world"
    assert (await backend.stat(f"{prefix}/blob")).size == 11
    assert await backend.list(prefix) == [f"{prefix}/blob"]


async def test_writer_creates_parent_directories_on_commit(backend: StorageBackend, prefix: str) -> None:
    writer = await staged(backend, f"{prefix}/a/b/c/blob", b"x")
    await writer.commit()
    assert await walked(backend, prefix) == [f"{prefix}/a/b/c/blob"]


async def test_writer_close_then_append_continues_the_file(backend: StorageBackend, prefix: str) -> None:
    first = await staged(backend, f"{prefix}/upload", b"first ")
    await first.close()
    second = await staged(backend, f"{prefix}/upload", b"second ", append=True)
    await second.close()
    third = await backend.writer(f"{prefix}/upload", append=True)
    assert third.size == len(b"first second ")
    await third.write(b"third")
    assert third.size == len(b"first second third")
    await third.commit()
    assert await backend.get_content(f"{prefix}/upload") == b"first second third"


async def test_append_without_staged_data_starts_empty(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"committed content is not appended to")
    writer = await backend.writer(f"{prefix}/blob", append=True)
    assert writer.size == 0
    await writer.write(b"new")
    await writer.commit()
    assert await backend.get_content(f"{prefix}/blob") == b"new"


async def test_writer_without_append_discards_staged_data(backend: StorageBackend, prefix: str) -> None:
    await (await staged(backend, f"{prefix}/upload", b"stale")).close()
    writer = await backend.writer(f"{prefix}/upload")
    assert writer.size == 0
    await writer.write(b"fresh")
    await writer.commit()
    assert await backend.get_content(f"{prefix}/upload") == b"fresh"


async def test_writer_cancel_leaves_nothing(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/other", b"o")
    writer = await staged(backend, f"{prefix}/blob", b"doomed")
    await writer.cancel()
    with pytest.raises(PathNotFound):
        await backend.stat(f"{prefix}/blob")
    assert await walked(backend, "") == [f"{prefix}/other"]
    later = await backend.writer(f"{prefix}/blob", append=True)
    assert later.size == 0
    await later.cancel()


async def test_cancel_discards_data_persisted_by_earlier_writers(backend: StorageBackend, prefix: str) -> None:
    await (await staged(backend, f"{prefix}/upload", b"persisted")).close()
    await (await backend.writer(f"{prefix}/upload", append=True)).cancel()
    writer = await backend.writer(f"{prefix}/upload", append=True)
    assert writer.size == 0
    await writer.cancel()


async def test_cancel_keeps_the_committed_file(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"committed")
    await (await staged(backend, f"{prefix}/blob", b"replacement")).cancel()
    assert await backend.get_content(f"{prefix}/blob") == b"committed"


async def test_writer_commit_replaces_an_existing_file(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"old content that is longer")
    writer = await staged(backend, f"{prefix}/blob", b"new")
    assert await backend.get_content(f"{prefix}/blob") == b"old content that is longer"
    await writer.commit()
    assert await backend.get_content(f"{prefix}/blob") == b"new"


async def test_writer_commits_an_empty_file(backend: StorageBackend, prefix: str) -> None:
    await (await backend.writer(f"{prefix}/empty")).commit()
    assert await backend.get_content(f"{prefix}/empty") == b""


@pytest.mark.parametrize("finish", ["close", "commit", "cancel"])
async def test_writer_is_unusable_once_finished(backend: StorageBackend, prefix: str, finish: str) -> None:
    writer = await staged(backend, f"{prefix}/blob", b"x")
    await getattr(writer, finish)()
    with pytest.raises(StorageError):
        await writer.write(b"more")
    with pytest.raises(StorageError):
        await writer.commit()
    await (await staged(backend, f"{prefix}/blob", b"y")).close()  # teardown's delete of the prefix removes it


async def test_writer_accepts_writes_of_any_size(backend: StorageBackend, prefix: str) -> None:
    parts = [b"", b"a", pattern(CHUNK_SIZE + 1, 1), b"", pattern(3 * CHUNK_SIZE, 2), b"z"]
    writer = await staged(backend, f"{prefix}/blob", *parts)
    assert writer.size == sum(len(p) for p in parts)
    await writer.commit()
    assert await backend.get_content(f"{prefix}/blob") == b"".join(parts)


async def test_large_write_in_many_small_chunks(backend: StorageBackend, prefix: str) -> None:
    data = pattern(2 * MIB + 1000)
    writer = await backend.writer(f"{prefix}/big")
    for start in range(0, len(data), 4096):
        await writer.write(data[start : start + 4096])
    assert writer.size == len(data)
    await writer.commit()
    assert (await backend.stat(f"{prefix}/big")).size == len(data)
    assert await read_all(backend, f"{prefix}/big") == data


async def test_concurrent_writers_to_different_paths(backend: StorageBackend, prefix: str) -> None:
    async def upload(index: int) -> None:
        writer = await backend.writer(f"{prefix}/uploads/{index}")
        for part in range(20):
            await writer.write(pattern(1000, index + part))
            await asyncio.sleep(0)
        await writer.commit()

    await asyncio.gather(*(upload(i) for i in range(10)))
    assert await backend.list(f"{prefix}/uploads") == sorted(f"{prefix}/uploads/{i}" for i in range(10))
    for index in range(10):
        expected = b"".join(pattern(1000, index + part) for part in range(20))
        assert await backend.get_content(f"{prefix}/uploads/{index}") == expected


async def test_commit_onto_a_directory_raises_storage_error(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/dir/blob", b"x")
    writer = await staged(backend, f"{prefix}/dir", b"y")
    with pytest.raises(StorageError):
        await writer.commit()
    assert await walked(backend, prefix) == [f"{prefix}/dir/blob"]


async def test_writer_below_a_file_raises_storage_error(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"x")
    with pytest.raises(StorageError):
        await backend.writer(f"{prefix}/blob/child")
    assert await walked(backend, prefix) == [f"{prefix}/blob"]


async def test_commit_after_the_tree_was_deleted_raises_path_not_found(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/uploads/other", b"o")
    writer = await staged(backend, f"{prefix}/uploads/blob", b"x")
    await backend.delete(f"{prefix}/uploads")
    with pytest.raises(PathNotFound):
        await writer.commit()
    with pytest.raises(PathNotFound):
        await backend.stat(f"{prefix}/uploads/blob")


# --- stat ---


async def test_stat_of_a_file_reports_its_size(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"12345")
    info = await backend.stat(f"{prefix}/blob")
    assert (info.path, info.size, info.is_dir) == (f"{prefix}/blob", 5, False)
    assert info.mtime > 0


async def test_stat_of_a_directory(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/dir/sub/blob", b"12345")
    info = await backend.stat(f"{prefix}/dir")
    assert (info.path, info.size, info.is_dir) == (f"{prefix}/dir", 0, True)
    assert info.mtime > 0


async def test_stat_of_a_missing_path_raises_path_not_found(backend: StorageBackend, prefix: str) -> None:
    with pytest.raises(PathNotFound):
        await backend.stat(f"{prefix}/missing")


# --- list ---


async def test_list_returns_sorted_direct_children(backend: StorageBackend, prefix: str) -> None:
    for name in ["zeta", "alpha/deep/file", "beta", "Alpha", "alpha/other"]:
        await backend.put_content(f"{prefix}/dir/{name}", b"x")
    assert await backend.list(f"{prefix}/dir") == [f"{prefix}/dir/{n}" for n in ["Alpha", "alpha", "beta", "zeta"]]
    assert await backend.list(f"{prefix}/dir/alpha") == [f"{prefix}/dir/alpha/deep", f"{prefix}/dir/alpha/other"]


async def test_list_does_not_confuse_sibling_prefixes(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/dir/a", b"x")
    await backend.put_content(f"{prefix}/dir-2/b", b"x")
    await backend.put_content(f"{prefix}/dir.txt", b"x")
    assert await backend.list(f"{prefix}/dir") == [f"{prefix}/dir/a"]
    assert await walked(backend, f"{prefix}/dir") == [f"{prefix}/dir/a"]


async def test_list_of_a_missing_directory_raises_path_not_found(backend: StorageBackend, prefix: str) -> None:
    with pytest.raises(PathNotFound):
        await backend.list(f"{prefix}/missing")


async def test_list_of_a_file_raises_path_not_found(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"x")
    with pytest.raises(PathNotFound):
        await backend.list(f"{prefix}/blob")


# --- move ---


async def test_move_renames_a_file(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/source", b"content")
    await backend.move(f"{prefix}/source", f"{prefix}/dest")
    assert await backend.get_content(f"{prefix}/dest") == b"content"
    with pytest.raises(PathNotFound):
        await backend.stat(f"{prefix}/source")


async def test_move_replaces_the_destination(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/source", b"new")
    await backend.put_content(f"{prefix}/dest", b"old and longer")
    await backend.move(f"{prefix}/source", f"{prefix}/dest")
    assert await backend.get_content(f"{prefix}/dest") == b"new"
    assert await walked(backend, prefix) == [f"{prefix}/dest"]


async def test_move_creates_the_destination_parents(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/uploads/data", b"blob")
    await backend.move(f"{prefix}/uploads/data", f"{prefix}/blobs/sha256/ab/data")
    assert await walked(backend, prefix) == [f"{prefix}/blobs/sha256/ab/data"]


async def test_move_onto_itself_keeps_the_file(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"x")
    await backend.move(f"{prefix}/blob", f"{prefix}/blob")
    assert await backend.get_content(f"{prefix}/blob") == b"x"


async def test_move_of_a_missing_source_raises_path_not_found(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/dest", b"kept")
    with pytest.raises(PathNotFound):
        await backend.move(f"{prefix}/missing", f"{prefix}/dest")
    assert await backend.get_content(f"{prefix}/dest") == b"kept"


async def test_move_of_a_directory_raises_storage_error(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/dir/blob", b"x")
    with pytest.raises(StorageError):
        await backend.move(f"{prefix}/dir", f"{prefix}/elsewhere")
    assert await walked(backend, prefix) == [f"{prefix}/dir/blob"]


# --- delete ---


async def test_delete_removes_a_file(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"x")
    await backend.put_content(f"{prefix}/other", b"x")
    await backend.delete(f"{prefix}/blob")
    with pytest.raises(PathNotFound):
        await backend.get_content(f"{prefix}/blob")
    assert await backend.list(prefix) == [f"{prefix}/other"]


async def test_delete_removes_a_whole_tree(backend: StorageBackend, prefix: str) -> None:
    for name in ["tree/a", "tree/sub/b", "tree/sub/deeper/c", "tree-sibling/d", "tree.txt"]:
        await backend.put_content(f"{prefix}/{name}", b"x")
    await backend.delete(f"{prefix}/tree")
    with pytest.raises(PathNotFound):
        await backend.stat(f"{prefix}/tree")
    assert await walked(backend, prefix) == [f"{prefix}/tree-sibling/d", f"{prefix}/tree.txt"]


async def test_delete_of_a_missing_path_raises_path_not_found(backend: StorageBackend, prefix: str) -> None:
    with pytest.raises(PathNotFound):
        await backend.delete(f"{prefix}/missing")


# --- walk ---


async def test_walk_returns_every_file_depth_first_in_sorted_order(backend: StorageBackend, prefix: str) -> None:
    names = ["b.txt", "b/y", "b/x/2", "b/x/1", "a", "c/d/e/f"]
    for name in names:
        await backend.put_content(f"{prefix}/{name}", name.encode())
    infos = [info async for info in backend.walk(prefix)]
    expected = ["a", "b/x/1", "b/x/2", "b/y", "b.txt", "c/d/e/f"]
    assert [info.path for info in infos] == [f"{prefix}/{name}" for name in expected]
    assert all(not info.is_dir and info.size == len(info.path) - len(prefix) - 1 for info in infos)


async def test_walk_of_a_subdirectory(backend: StorageBackend, prefix: str) -> None:
    for name in ["x/1", "x/sub/2", "y/3"]:
        await backend.put_content(f"{prefix}/{name}", b"x")
    assert await walked(backend, f"{prefix}/x") == [f"{prefix}/x/1", f"{prefix}/x/sub/2"]


async def test_walk_of_a_missing_directory_raises_path_not_found(backend: StorageBackend, prefix: str) -> None:
    with pytest.raises(PathNotFound):
        await walked(backend, f"{prefix}/missing")


async def test_walk_of_a_file_raises_path_not_found(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/blob", b"x")
    with pytest.raises(PathNotFound):
        await walked(backend, f"{prefix}/blob")


# --- redirect_url ---


async def test_redirect_url_is_none_for_local_backends(backend: StorageBackend, prefix: str) -> None:
    if backend.name not in ("filesystem", "inmemory"):
        pytest.skip("backends that can redirect are tested on their own")
    await backend.put_content(f"{prefix}/blob", b"x")
    assert not backend.redirects
    assert await backend.redirect_url(f"{prefix}/blob") is None
    assert await backend.redirect_url(f"{prefix}/blob", "HEAD") is None


# --- the suite's own teardown ---


async def test_teardown_check_catches_files_outside_the_test_prefix(backend: StorageBackend, prefix: str) -> None:
    await backend.put_content(f"{prefix}/inside", b"x")
    await backend.put_content(f"{prefix}-leak/outside", b"x")
    with pytest.raises(AssertionError, match="leak/outside"):
        await assert_clean_after(backend, prefix)
    await backend.delete(f"{prefix}-leak")


# --- filesystem specifics ---


async def test_filesystem_stores_files_at_their_path_under_the_root(tmp_path: Path) -> None:
    backend = FilesystemBackend(str(tmp_path))
    await backend.put_content("a/b/blob", b"content")
    assert (tmp_path / "a" / "b" / "blob").read_bytes() == b"content"
    assert files_on_disk(tmp_path) == [os.path.join("a", "b", "blob")]


async def test_filesystem_stages_writes_in_a_hidden_partial_file(tmp_path: Path) -> None:
    backend = FilesystemBackend(str(tmp_path))
    await backend.put_content("dir/other", b"o")
    writer = await staged(backend, "dir/blob", b"partial")
    await writer.close()
    assert (tmp_path / "dir" / ".blob.partial").read_bytes() == b"partial"
    assert await backend.list("dir") == ["dir/other"]
    await (await backend.writer("dir/blob", append=True)).commit()
    assert files_on_disk(tmp_path) == [os.path.join("dir", "blob"), os.path.join("dir", "other")]


@pytest.mark.parametrize("name", [".blob.partial", ".blob.0123456789abcdef.tmp"])
async def test_filesystem_refuses_paths_shaped_like_its_staging_files(tmp_path: Path, name: str) -> None:
    backend = FilesystemBackend(str(tmp_path))
    with pytest.raises(InvalidPath):
        await backend.put_content(f"dir/{name}", b"x")
    with pytest.raises(InvalidPath):
        await backend.stat(f"{name}/blob")


async def test_filesystem_allows_ordinary_dot_files(tmp_path: Path) -> None:
    backend = FilesystemBackend(str(tmp_path))
    await backend.put_content("dir/.hidden", b"x")
    await backend.put_content("dir/.notes.tmp", b"y")
    assert await backend.list("dir") == ["dir/.hidden", "dir/.notes.tmp"]


async def test_filesystem_put_cleans_up_its_temp_file_on_failure(tmp_path: Path) -> None:
    backend = FilesystemBackend(str(tmp_path))
    await backend.put_content("dir/sub/blob", b"x")
    with pytest.raises(StorageError):
        await backend.put_content("dir/sub", b"y")
    assert files_on_disk(tmp_path) == [os.path.join("dir", "sub", "blob")]


async def test_filesystem_root_is_created_by_the_first_write(tmp_path: Path) -> None:
    backend = FilesystemBackend(str(tmp_path / "not" / "yet"))
    assert await backend.list("") == []
    await backend.put_content("blob", b"x")
    assert (tmp_path / "not" / "yet" / "blob").exists()


# --- create_backend ---


def test_create_backend_knows_every_driver_name() -> None:
    assert set(BACKENDS) == {"filesystem", "inmemory", "s3"}


def test_create_backend_passes_params_as_keywords(tmp_path: Path) -> None:
    backend = create_backend("filesystem", {"rootdirectory": str(tmp_path)})
    assert isinstance(backend, FilesystemBackend)
    assert backend.name == "filesystem"


def test_create_backend_defaults_the_filesystem_root_like_distribution() -> None:
    backend = create_backend("filesystem", {})
    assert isinstance(backend, FilesystemBackend)
    assert backend._resolve("blob") == "/var/lib/registry/blob"


def test_create_backend_builds_the_in_memory_backend() -> None:
    assert isinstance(create_backend("inmemory", {}), InMemoryBackend)


def test_create_backend_rejects_an_unknown_driver() -> None:
    with pytest.raises(ValueError, match="unknown storage driver 'gcs'"):
        create_backend("gcs", {})


def test_create_backend_rejects_unknown_parameters() -> None:
    with pytest.raises(ValueError, match="invalid parameters for storage driver 'inmemory'"):
        create_backend("inmemory", {"rootdirectory": "/tmp"})
