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
        self,
        parts: list[str],
        *,
        create: bool = False,
        mode: int = 0o755,
        created: set[tuple[str, ...]] | None = None,
        resolved: list[str] | None = None,
    ) -> int:
        """An fd for the directory at `parts` (the caller closes it); missing directories made when `create`, and
        their resolved paths added to `created`; the directory's own resolved path put in `resolved`.
        One fd is open at a time, whatever the depth: `..` reopens the parent, which is the resolved path's own
        parent since every step was taken by hand."""
        fd = os.dup(self.fd)
        where: list[str] = []  # the resolved path of fd
        todo = list(reversed(parts))
        links = 0
        try:
            while todo:
                part = todo.pop()
                if part in ("", "."):
                    continue
                if part == "..":
                    if where:
                        fd = replace_fd(fd, os.open("..", DIR_FLAGS, dir_fd=fd))
                        where.pop()
                    continue
                st = self._lstat_or_create(fd, part, create, mode, created, (*where, part))
                if stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise OSError(errno.ELOOP, "too many levels of symbolic links", "/".join(parts))
                    target = os.readlink(part, dir_fd=fd)
                    if target.startswith("/"):
                        fd = replace_fd(fd, os.dup(self.fd))
                        where.clear()
                    todo.extend(reversed(split(target)))
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    raise NotADirectoryError(errno.ENOTDIR, "not a directory", "/".join(parts))
                fd = replace_fd(fd, os.open(part, DIR_FLAGS, dir_fd=fd))
                where.append(part)
            if resolved is not None:
                resolved[:] = where
            found, fd = fd, -1
            return found
        finally:
            if fd >= 0:
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


def replace_fd(old: int, new: int) -> int:
    """Close `old`, keep `new`: how one fd walks a tree."""
    os.close(old)
    return new


def remove_tree(name: str | os.PathLike[str], dir_fd: int | None = None) -> None:
    """Remove `name` and all below it without following a symlink and without recursion: one directory fd is open at
    a time, and the way back up is `..`, checked against the device and inode seen on the way down. A missing
    `name` is no error. Directories the caller cannot write (a layer's 0555 as a normal user) are opened up first."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = _open_to_empty(name, dir_fd)
    levels = [((st.st_dev, st.st_ino), "", _unlink_files(fd))]  # each open level: identity, name, subdirectories left
    try:
        while len(levels) > 1 or levels[0][2]:
            if levels[-1][2]:
                child = levels[-1][2].pop()
                fd = replace_fd(fd, _open_to_empty(child, fd))
                found = os.fstat(fd)
                levels.append(((found.st_dev, found.st_ino), child, _unlink_files(fd)))
                continue
            _, emptied, _ = levels.pop()
            fd = replace_fd(fd, os.open("..", DIR_FLAGS, dir_fd=fd))
            found = os.fstat(fd)
            if (found.st_dev, found.st_ino) != levels[-1][0]:
                raise OSError(errno.ESTALE, "a directory moved while it was being removed", os.fsdecode(name))
            os.rmdir(emptied, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def remove_tree_quietly(path: str | os.PathLike[str]) -> None:
    with contextlib.suppress(OSError):
        remove_tree(path)


def _open_to_empty(name: str | os.PathLike[str], dir_fd: int | None) -> int:
    """A directory's fd, made writable to its owner when we are not root (root writes anything anyway)."""
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        if os.geteuid() == 0:
            raise
        os.chmod(name, 0o700, dir_fd=dir_fd)  # lstat said directory; nobody else writes this store
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    if os.geteuid() != 0:
        os.fchmod(fd, 0o700)
    return fd


def _unlink_files(fd: int) -> list[str]:
    """Unlink every entry of the directory but its subdirectories; their names."""
    subdirs = []
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.name)
            else:
                os.unlink(entry.name, dir_fd=fd)
    return subdirs


@contextlib.contextmanager
def in_root(root: str | os.PathLike[str]) -> Iterator[InRoot]:
    r = InRoot(root)
    try:
        yield r
    finally:
        r.close()
