"""Errors raised by storage backends.

StorageError
 ├── PathNotFound        the path does not exist
 ├── InvalidPath         the path is not a clean relative path (empty, absolute, ``..``)
 └── InvalidOffset       a reader or writer was asked for an offset past the end
"""

from __future__ import annotations


class StorageError(Exception):
    def __init__(self, path: str, detail: str = "") -> None:
        super().__init__(f"{path}: {detail}" if detail else path)
        self.path = path
        self.detail = detail


class PathNotFound(StorageError):
    pass


class InvalidPath(StorageError):
    pass


class InvalidOffset(StorageError):
    pass
