"""Storage backends, chosen by driver name as in distribution's ``storage:`` configuration."""

from __future__ import annotations

import importlib
from typing import Any, cast

from registry.settings import ConfigError, Section
from storage_backends.base import CHUNK_SIZE, FileInfo, FileWriter, LocalFiles, StorageBackend, clean_path
from storage_backends.errors import InvalidOffset, InvalidPath, PathNotFound, StorageError

BACKENDS: dict[str, str] = {
    "filesystem": "storage_backends.filesystem:FilesystemBackend",
    "inmemory": "storage_backends.inmemory:InMemoryBackend",
    "s3": "storage_backends.s3:S3Backend",
}


def parameters(name: str) -> Section | None:
    """The ``storage.<name>`` section a driver declares beside its code (``PARAMETERS`` in its module); None for a
    name that is no driver. Only that driver's module is imported."""
    target = BACKENDS.get(name)
    if target is None:
        return None
    return cast(Section, importlib.import_module(target.partition(":")[0]).PARAMETERS)


def create_backend(name: str, params: dict[str, Any]) -> StorageBackend:
    """The driver ``name`` with its parameters (distribution's, as text or typed), read by its section: each
    keyword the backend's constructor gets is typed and defaulted there."""
    section = parameters(name)
    if section is None:
        raise ValueError(f"unknown storage driver {name!r}")
    unknown = sorted(str(key) for key in params if key not in section.keys)
    if unknown:
        raise ValueError(f"invalid parameters for storage driver {name!r}: unknown {', '.join(unknown)}")
    try:
        values = section.read(params, f"storage.{name}")
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    module_name, _, class_name = BACKENDS[name].partition(":")
    return cast(StorageBackend, getattr(importlib.import_module(module_name), class_name)(**values))


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
    "parameters",
]
