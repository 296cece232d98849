"""Storage backends, chosen by driver name as in distribution's ``storage:`` configuration."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, cast

from storage_backends.base import CHUNK_SIZE, FileInfo, FileWriter, LocalFiles, StorageBackend, clean_path
from storage_backends.errors import InvalidOffset, InvalidPath, PathNotFound, StorageError

BACKENDS: dict[str, str] = {
    "filesystem": "storage_backends.filesystem:FilesystemBackend",
    "inmemory": "storage_backends.inmemory:InMemoryBackend",
    "s3": "storage_backends.s3:S3Backend",
}


def create_backend(name: str, params: dict[str, Any]) -> StorageBackend:
    try:
        module_name, _, class_name = BACKENDS[name].partition(":")
    except KeyError:
        raise ValueError(f"unknown storage driver {name!r}") from None
    backend_class = getattr(importlib.import_module(module_name), class_name)
    try:
        inspect.signature(backend_class).bind(**params)
    except TypeError as exc:
        raise ValueError(f"invalid parameters for storage driver {name!r}: {exc}") from None
    return cast(StorageBackend, backend_class(**params))


__all__ = [
    "BACKENDS",
    "CHUNK_SIZE",
    "FileInfo",
    "FileWriter",
    "InvalidOffset",
    "InvalidPath",
    "LocalFiles",
    "PathNotFound",
    "StorageBackend",
    "StorageError",
    "clean_path",
    "create_backend",
]
