"""Paths inside a directory, resolved by hand so that nothing outside it is ever touched.

Every component is opened relative to its parent's file descriptor with O_NOFOLLOW. A symlink met on the way is
read and resolved against the root, as if the root were `/`: an absolute target restarts at the root and `..`
never climbs above it. This is how a layer's symlinked parents (`lib -> usr/lib`) are honoured while a hostile
`etc -> /etc` or `x -> ../../..` still lands inside the layer.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

MAX_SYMLINKS = 40
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split(path: str) -> list[str]:
    """Components of a path with empty and `.` parts dropped (`..` kept for the walker)."""
    return [p for p in path.split("/") if p not in ("", ".")]


def normalise(path: str) -> list[str] | None:
    """Lexically resolve `..` in an archive entry name; None when it climbs above the root."""
    out: list[str] = []
    for part in split(path):
        if part == "..":
            if not out:
                return None
            out.pop()
        else:
            out.append(part)
    return out


class InRoot:
    """A directory fd and the by-hand resolver. Use as a context manager, or close()."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.fd = os.open(root, DIR_FLAGS)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> InRoot:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def open_dir(
        self, parts: list[str], *, create: bool = False, mode: int = 0o755, created: set[tuple[str, ...]] | None = None
    ) -> int:
        """An fd for the directory at `parts` (the caller closes it); missing directories made when `create`, and
        their resolved paths added to `created`."""
        fds = [os.dup(self.fd)]
        where: list[str] = []  # the resolved path of fds[-1]
        todo = list(reversed(parts))
        links = 0
        try:
            while todo:
                part = todo.pop()
                if part in ("", "."):
                    continue
                if part == "..":
                    if len(fds) > 1:
                        os.close(fds.pop())
                        where.pop()
                    continue
                st = self._lstat_or_create(fds[-1], part, create, mode, created, (*where, part))
                if stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise OSError(errno.ELOOP, "too many levels of symbolic links", "/".join(parts))
                    target = os.readlink(part, dir_fd=fds[-1])
                    if target.startswith("/"):
                        while len(fds) > 1:
                            os.close(fds.pop())
                        where.clear()
                    todo.extend(reversed(split(target)))
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    raise NotADirectoryError(errno.ENOTDIR, "not a directory", "/".join(parts))
                fds.append(os.open(part, DIR_FLAGS, dir_fd=fds[-1]))
                where.append(part)
            return fds.pop()
        finally:
            for fd in fds:
                os.close(fd)

    @staticmethod
    def _lstat_or_create(
        dir_fd: int, name: str, create: bool, mode: int, created: set[tuple[str, ...]] | None, path: tuple[str, ...]
    ) -> os.stat_result:
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(name, mode, dir_fd=dir_fd)
            if created is not None:
                created.add(path)
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)

    def resolve(self, path: str, *, create_parents: bool = False) -> tuple[int, str]:
        """(fd of the parent directory, final name) with every symlink, the final one included, resolved."""
        parts = split(path)
        for _ in range(MAX_SYMLINKS):
            if not parts:
                return os.dup(self.fd), "."
            parent = self.open_dir(parts[:-1], create=create_parents)
            name = parts[-1]
            if name == "..":
                os.close(parent)
                return self.open_dir(parts), "."
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                return parent, name
            if not stat.S_ISLNK(st.st_mode):
                return parent, name
            target = os.readlink(name, dir_fd=parent)
            os.close(parent)
            parts = split(target) if target.startswith("/") else [*parts[:-1], *split(target)]
        raise OSError(errno.ELOOP, "too many levels of symbolic links", path)

    def read_file(self, path: str, limit: int = 1 << 20) -> bytes:
        """The contents of a regular file inside the root (at most `limit` bytes)."""
        parent, name = self.resolve(path)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=parent)
        finally:
            os.close(parent)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", path)
            return f.read(limit)

    def make_dirs(self, path: str) -> None:
        os.close(self.open_dir(split(path), create=True))


@contextlib.contextmanager
def in_root(root: str | os.PathLike[str]) -> Iterator[InRoot]:
    r = InRoot(root)
    try:
        yield r
    finally:
        r.close()
