"""Unpack one layer tar into its own directory, by the OCI image-spec layer rules, safely.

Every entry is created relative to the layer directory through `fsroot.InRoot` (dir fds, O_NOFOLLOW), never with
tarfile's extract: an absolute name is taken relative to the layer, a name that climbs out with `..` fails the
layer, a symlinked parent resolves inside the layer, a hard link must name an earlier entry of the same layer, an
existing entry is replaced without following it, and device nodes are skipped. Whiteouts become what overlayfs
reads in a lower directory: `.wh.NAME` a 0/0 character device named NAME, `.wh..wh..opq` the xattr
`trusted.overlay.opaque=y` on its directory.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, cast

import zstandard

from .errors import UnpackError
from .fsroot import InRoot, normalise

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
XATTR_PAX_PREFIX = "SCHILY.xattr."
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20


@dataclass
class UnpackStats:
    entries: int = 0
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)
    implicit_dirs: set[tuple[str, ...]] = field(default_factory=set)  # parents the tar has no entry for


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


def unpack_blob(path: str | os.PathLike[str], dest: str | os.PathLike[str]) -> tuple[str, UnpackStats]:
    """Unpack a (compressed) layer blob into the empty directory `dest`; returns (diff_id, stats)."""
    with decompressed(path) as stream:
        reader = HashingReader(stream)
        stats = unpack(reader, dest)
        reader.drain()
    return reader.digest, stats


def unpack(stream: HashingReader | IO[bytes], dest: str | os.PathLike[str]) -> UnpackStats:
    """Unpack an uncompressed tar stream into the directory `dest`."""
    with InRoot(dest) as root:
        unpacker = _Unpacker(root, os.geteuid() == 0)
        try:
            with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|") as tar:
                for member in tar:
                    unpacker.entry(tar, member)
        except tarfile.TarError as exc:
            raise UnpackError(f"malformed layer tar: {exc}") from exc
        unpacker.finish()
        return unpacker.stats


class _Unpacker:
    def __init__(self, root: InRoot, as_root: bool) -> None:
        self.root = root
        self.as_root = as_root
        self.stats = UnpackStats()
        self.linkable: set[tuple[str, ...]] = set()  # entries of this layer a hard link may name
        self.dir_times: list[tuple[list[str], int]] = []

    def entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = normalise(member.name)
        if parts is None:
            raise UnpackError(f"layer entry {member.name!r} climbs out of the layer with '..'")
        self.stats.entries += 1
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
        elif member.ischr() or member.isblk():
            self.stats.skipped.append(member.name)  # device nodes never come from a layer; runc makes /dev
        else:
            parent = self.root.open_dir(parts[:-1], create=True, created=self.stats.implicit_dirs)
            try:
                self._create(tar, member, parts, parent, name)
            finally:
                os.close(parent)

    def _create(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parts: list[str], parent: int, name: str) -> None:
        existing = _lstat(parent, name)
        if existing is not None and not (member.isdir() and stat.S_ISDIR(existing.st_mode)):
            _remove(parent, name, existing)
        if member.isdir():
            self.stats.implicit_dirs.discard(tuple(parts))
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                os.mkdir(name, 0o700, dir_fd=parent)
            self._attributes(parent, name, member)
            self.dir_times.append((parts, int(member.mtime)))
        elif member.isreg():
            self._file(tar, member, parent, name)
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

    def _file(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parent: int, name: str) -> None:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
        try:
            source = tar.extractfile(member)
            if source is not None:
                with os.fdopen(fd, "wb", closefd=False) as out:
                    shutil.copyfileobj(source, out, CHUNK)
            self.stats.bytes += member.size
            self._fd_attributes(fd, member)
        finally:
            os.close(fd)

    def _hardlink(self, member: tarfile.TarInfo, parts: list[str], parent: int, name: str) -> None:
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

    def _attributes(self, parent: int, name: str, member: tarfile.TarInfo) -> None:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=parent)
        try:
            self._fd_attributes(fd, member)
        finally:
            os.close(fd)

    def _fd_attributes(self, fd: int, member: tarfile.TarInfo) -> None:
        """Owner first (chown clears suid bits and file capabilities), then mode, xattrs, mtime."""
        if self.as_root:
            os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, member.mode & 0o7777)
        for key, value in member.pax_headers.items():
            if key.startswith(XATTR_PAX_PREFIX):
                self._xattr(fd, key[len(XATTR_PAX_PREFIX) :], value)
        if not member.isdir():
            os.utime(fd, (member.mtime, member.mtime))

    def _xattr(self, fd: int, attribute: str, value: str) -> None:
        if attribute.startswith("trusted.") or (attribute.startswith("security.") and not self.as_root):
            self.stats.skipped.append(f"xattr {attribute}")  # trusted.overlay.* would steer overlayfs
            return
        try:
            os.setxattr(fd, attribute, value.encode("utf-8", "surrogateescape"))
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
                _remove(parent, name, existing)
            try:
                os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)
            except PermissionError:
                self.stats.skipped.append("/".join([*dir_parts, name]) + " (whiteouts need root)")
        finally:
            os.close(parent)

    def finish(self) -> None:
        """Directory mtimes last: creating their children moved them."""
        for parts, mtime in reversed(self.dir_times):
            with contextlib.suppress(OSError):
                fd = self.root.open_dir(parts)
                try:
                    os.utime(fd, (mtime, mtime))
                finally:
                    os.close(fd)


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


def _remove(parent: int, name: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=parent)
    else:
        os.unlink(name, dir_fd=parent)
