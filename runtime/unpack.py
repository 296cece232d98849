"""Unpack one layer tar into its own directory, by the OCI image-spec layer rules, safely.

The tar is read by `tarstream.TarReader`, whose headers and sizes are bounded by `Limits`; a sparse file's holes
are seeked over, never written. Every entry is created relative to the layer directory through `fsroot.InRoot`
(dir fds, O_NOFOLLOW), never with tarfile's extract: an absolute name is taken relative to the layer, a name that
climbs out with `..` fails the layer, a symlinked parent resolves inside the layer, a hard link must name an earlier
entry of the same layer, an existing entry is replaced without following it, and device nodes are skipped.
Whiteouts become what overlayfs reads in a lower directory: `.wh.NAME` a 0/0 character device named NAME,
`.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on its directory.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, cast

import zstandard

from .errors import UnpackError
from .fsroot import DIR_FLAGS, InRoot, normalise, remove_tree, replace_fd
from .tarstream import Limits, Member, TarReader

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20


@dataclass
class UnpackStats:
    entries: int = 0
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)
    implicit_dirs: set[tuple[str, ...]] = field(default_factory=set)  # parents the tar has no entry for


class Budget:
    """Bytes the layers of one image may still take, shared by the threads that unpack them."""

    def __init__(self, limit: int) -> None:
        self.limit = self.left = limit
        self.lock = threading.Lock()

    def charge(self, size: int) -> None:
        with self.lock:
            if size > self.left:
                raise UnpackError(f"the image unpacks to more than {self.limit} bytes (unpack.image)")
            self.left -= size


class HashingReader:
    """Counts and sha256-hashes every byte read through it (the layer's diff_id)."""

    def __init__(self, raw: BinaryIO | IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha256.hexdigest()


@contextlib.contextmanager
def decompressed(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """The uncompressed tar stream of a layer blob: gzip and zstd told apart by their magic, else plain tar."""
    with open(path, "rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        if magic.startswith(GZIP_MAGIC):
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield cast(IO[bytes], io.BufferedReader(cast(io.RawIOBase, gz), CHUNK))
        elif magic == ZSTD_MAGIC:
            with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True) as zst:
                yield cast(IO[bytes], zst)
        else:
            yield raw


def unpack_blob(
    path: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    limits: Limits | None = None,
    budget: Budget | None = None,
) -> tuple[str, UnpackStats]:
    """Unpack a (compressed) layer blob into the empty directory `dest`; returns (diff_id, stats)."""
    with decompressed(path) as stream:
        reader = HashingReader(stream)
        stats = unpack(reader, dest, limits, budget)
        reader.drain()
    return reader.digest, stats


def unpack(
    stream: HashingReader | IO[bytes],
    dest: str | os.PathLike[str],
    limits: Limits | None = None,
    budget: Budget | None = None,
) -> UnpackStats:
    """Unpack an uncompressed tar stream into the directory `dest`."""
    limits = limits or Limits()
    reader = TarReader(stream, limits)
    with InRoot(dest) as root:
        unpacker = _Unpacker(root, os.geteuid() == 0, limits, budget or Budget(limits.image))
        try:
            for member in reader.members():
                unpacker.entry(reader, member)
        except OSError as exc:
            raise UnpackError(f"{_shown(unpacker.current)}: {exc.strerror or exc}") from exc
        finally:
            unpacker.close()
        unpacker.finish()
        return unpacker.stats


def _shown(name: str, width: int = 160) -> str:
    return repr(name if len(name) <= width else f"{name[:width]}...({len(name)} characters)")


class _Unpacker:
    def __init__(self, root: InRoot, as_root: bool, limits: Limits, budget: Budget) -> None:
        self.root = root
        self.as_root = as_root
        self.limits = limits
        self.budget = budget
        self.stats = UnpackStats()
        self.linkable: set[tuple[str, ...]] = set()  # entries of this layer a hard link may name
        self.dir_times: list[tuple[tuple[str, ...], int]] = []  # each directory's resolved path, and its mtime
        self.current = ""
        self.parent: tuple[tuple[str, ...], int, tuple[str, ...]] | None = None  # (parts, fd, resolved): kept
        self.stale = False  # something was removed since: the kept parent's path may lead elsewhere now

    def entry(self, reader: TarReader, member: Member) -> None:
        self.current = member.name
        parts = normalise(member.name)
        if parts is None:
            raise UnpackError(f"layer entry {_shown(member.name)} climbs out of the layer with '..'")
        self.stats.entries += 1
        if self.stats.entries > self.limits.entries:
            raise UnpackError(f"the layer has more than {self.limits.entries} entries (unpack.entries)")
        if not parts:
            if member.isdir():
                self._attributes(self.root.fd, ".", member)
            return
        name = parts[-1]
        if name == OPAQUE:
            self._opaque(parts[:-1])
        elif name.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            self.stats.skipped.append(member.name)  # aufs bookkeeping (.wh..wh.plnk), meaningless here
        elif name.startswith(WHITEOUT_PREFIX):
            self._whiteout(parts[:-1], name[len(WHITEOUT_PREFIX) :])
        elif member.isdev():
            self.stats.skipped.append(member.name)  # device nodes never come from a layer; runc makes /dev
        else:
            self._create(reader, member, parts, self._parent(parts[:-1]), name)

    def _parent(self, parts: list[str]) -> int:
        """The directory fd for `parts`. Consecutive entries mostly share a parent, or name the directory just made,
        so the last one is kept: a tree thousands deep unpacks without walking from the root for each entry."""
        if self.parent is not None and self.parent[0] == tuple(parts) and not self.stale:
            return self.parent[1]
        resolved: list[str] = []
        fd = self.root.open_dir(parts, create=True, created=self.stats.implicit_dirs, resolved=resolved)
        self._keep(tuple(parts), fd, tuple(resolved))
        return fd

    def _keep(self, parts: tuple[str, ...], fd: int, resolved: tuple[str, ...]) -> None:
        self.close()
        self.parent, self.stale = (parts, fd, resolved), False

    def close(self) -> None:
        if self.parent is not None:
            os.close(self.parent[1])
            self.parent = None

    def _create(self, reader: TarReader, member: Member, parts: list[str], parent: int, name: str) -> None:
        existing = _lstat(parent, name)
        if existing is not None and not (member.isdir() and stat.S_ISDIR(existing.st_mode)):
            self._remove(parent, name, existing)
        if member.isdir():
            self._directory(member, parts, parent, name, existing)
        elif member.isreg():
            self._file(reader, member, parent, name)
            self.linkable.add(tuple(parts))
        elif member.issym():
            os.symlink(member.linkname, name, dir_fd=parent)
            if self.as_root:
                os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
            os.utime(name, (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)
            self.linkable.add(tuple(parts))
        elif member.islnk():
            self._hardlink(member, parts, parent, name)
        elif member.isfifo():
            os.mkfifo(name, 0o600, dir_fd=parent)
            self._attributes(parent, name, member)
        else:
            self.stats.skipped.append(member.name)

    def _directory(
        self, member: Member, parts: list[str], parent: int, name: str, existing: os.stat_result | None
    ) -> None:
        self.stats.implicit_dirs.discard(tuple(parts))
        if existing is None or not stat.S_ISDIR(existing.st_mode):
            os.mkdir(name, 0o700, dir_fd=parent)
        fd = os.open(name, DIR_FLAGS, dir_fd=parent)
        assert self.parent is not None and self.parent[1] == parent
        resolved = (*self.parent[2], name)
        self._keep(tuple(parts), fd, resolved)
        self._fd_attributes(fd, member)
        self.dir_times.append((resolved, int(member.mtime)))

    def _file(self, reader: TarReader, member: Member, parent: int, name: str) -> None:
        size = member.data_size()
        if self.stats.bytes + size > self.limits.layer:
            raise UnpackError(f"the layer unpacks to more than {self.limits.layer} bytes (unpack.layer)")
        self.budget.charge(size)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
        try:
            self.stats.bytes += reader.copy(member, fd)
            self._fd_attributes(fd, member)
        finally:
            os.close(fd)

    def _hardlink(self, member: Member, parts: list[str], parent: int, name: str) -> None:
        target = normalise(member.linkname)
        if target is None or tuple(target) not in self.linkable:
            raise UnpackError(f"hard link {member.name!r} -> {member.linkname!r} names no earlier entry of this layer")
        if target == parts:
            return
        target_parent = self.root.open_dir(target[:-1])
        try:
            found = _lstat(target_parent, target[-1])
            if found is None or not (stat.S_ISREG(found.st_mode) or stat.S_ISLNK(found.st_mode)):
                raise UnpackError(f"hard link {member.name!r}: target {member.linkname!r} is gone or not a file")
            os.link(target[-1], name, src_dir_fd=target_parent, dst_dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(target_parent)
        self.linkable.add(tuple(parts))

    def _attributes(self, parent: int, name: str, member: Member) -> None:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=parent)
        try:
            self._fd_attributes(fd, member)
        finally:
            os.close(fd)

    def _fd_attributes(self, fd: int, member: Member) -> None:
        """Owner first (chown clears suid bits and file capabilities), then mode, xattrs, mtime."""
        if self.as_root:
            os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, member.mode & 0o7777)
        for attribute, value in member.xattrs.items():
            self._xattr(fd, attribute, value)
        if not member.isdir():
            os.utime(fd, (member.mtime, member.mtime))

    def _xattr(self, fd: int, attribute: str, value: bytes) -> None:
        if attribute.startswith("trusted.") or (attribute.startswith("security.") and not self.as_root):
            self.stats.skipped.append(f"xattr {attribute}")  # trusted.overlay.* would steer overlayfs
            return
        try:
            os.setxattr(fd, attribute, value)
        except OSError as exc:
            self.stats.skipped.append(f"xattr {attribute}: {exc.strerror}")

    def _opaque(self, dir_parts: list[str]) -> None:
        fd = self.root.open_dir(dir_parts, create=True, created=self.stats.implicit_dirs)
        try:
            if self.as_root:
                os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
            else:
                self.stats.skipped.append("/".join([*dir_parts, OPAQUE]) + " (opaque directories need root)")
        finally:
            os.close(fd)

    def _whiteout(self, dir_parts: list[str], name: str) -> None:
        if not name or name in (".", "..") or "/" in name:
            raise UnpackError(f"invalid whiteout {'/'.join([*dir_parts, WHITEOUT_PREFIX + name])!r}")
        parent = self.root.open_dir(dir_parts, create=True, created=self.stats.implicit_dirs)
        try:
            existing = _lstat(parent, name)
            if existing is not None:
                self._remove(parent, name, existing)
            try:
                os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)
            except PermissionError:
                self.stats.skipped.append("/".join([*dir_parts, name]) + " (whiteouts need root)")
        finally:
            os.close(parent)

    def _remove(self, parent: int, name: str, st: os.stat_result) -> None:
        self.stale = True
        if stat.S_ISDIR(st.st_mode):
            remove_tree(name, dir_fd=parent)
        else:
            os.unlink(name, dir_fd=parent)

    def finish(self) -> None:
        """Directory mtimes last (making their children moved them), deepest first, walking by resolved paths with
        `..` and O_NOFOLLOW: a directory that a later entry removed or replaced is passed over."""
        at: tuple[str, ...] = ()
        fd = os.dup(self.root.fd)
        try:
            for path, mtime in reversed(self.dir_times):
                at, fd = _walk(at, fd, path, self.root.fd)
                if at == path:
                    os.utime(fd, (mtime, mtime))
        finally:
            os.close(fd)


def _walk(at: tuple[str, ...], fd: int, path: tuple[str, ...], root: int) -> tuple[tuple[str, ...], int]:
    """From the directory `fd` at `at` to `path`: up by `..`, down by O_NOFOLLOW; back to the root on a failure."""
    common = 0
    while common < min(len(at), len(path)) and at[common] == path[common]:
        common += 1
    try:
        for _ in range(len(at) - common):
            fd = replace_fd(fd, os.open("..", DIR_FLAGS, dir_fd=fd))
            at = at[:-1]
        for name in path[common:]:
            fd = replace_fd(fd, os.open(name, DIR_FLAGS, dir_fd=fd))
            at = (*at, name)
    except OSError:
        return (), replace_fd(fd, os.dup(root))
    return at, fd


def inherit_parents(layer: str | os.PathLike[str], implicit: set[tuple[str, ...]], lowers: list[Path]) -> None:
    """Give the directories a layer created implicitly the owner and mode they have in the layers below.

    In overlayfs a directory's attributes come from the topmost layer that has it: a layer that adds `/home/app/f`
    without an entry for `/home/app` must not turn the lower `/home/app` (app, 0700) into (root, 0755).
    `lowers` are the layer directories below, nearest first.
    """
    if not implicit:
        return
    with InRoot(layer) as top:
        for parts in sorted(implicit, key=len):
            found = _find_dir(list(parts), lowers)
            if found is None:
                continue
            fd = top.open_dir(list(parts))
            try:
                if os.geteuid() == 0:
                    os.fchown(fd, found.st_uid, found.st_gid)
                os.fchmod(fd, stat.S_IMODE(found.st_mode))
            finally:
                os.close(fd)


def _find_dir(parts: list[str], lowers: list[Path]) -> os.stat_result | None:
    for lower in lowers:
        with InRoot(lower) as root:
            try:
                parent = root.open_dir(parts[:-1])
            except OSError:
                continue
            try:
                st = _lstat(parent, parts[-1])
            finally:
                os.close(parent)
        if st is None:
            continue
        return st if stat.S_ISDIR(st.st_mode) else None  # a whiteout or a file hides everything below
    return None


def _lstat(parent: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return None
