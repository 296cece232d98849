"""A streaming tar reader with bounds: ustar, GNU (long names, old sparse) and PAX (records, sparse 0.0, 0.1, 1.0).

Python's tarfile reads a PAX header, a GNU long name or link whole, however large the header says it is, and hands a
sparse file over with its holes filled in. This reader refuses any such header larger than `Limits.header` before
reading a byte of it, and gives a sparse file as its data segments, so that the writer seeks over the holes.

    members()   every entry in order, meta headers (x, g, L, K, the sparse maps) folded into the entry they describe
    copy(m, fd) the entry's data into a file: segment by segment at their offsets, then truncated to the real size
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from .errors import UnpackError

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
CHUNK = 1 << 20
GNU_MAGIC = b"ustar  \0"
REGULAR = (b"0", b"\0", b"7")
META = (b"x", b"g", b"L", b"K")
_DECIMAL = re.compile(rb"[0-9]{1,20}")
_TIME = re.compile(rb"-?[0-9]{1,20}(\.[0-9]{0,9})?")


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Limits:
    """What one layer may make the unpacker read or write; each refusal names the limit's key."""

    header: int = 1 << 20  # one PAX header, GNU long name or link, or sparse map (tar's own headers are 512 bytes)
    layer: int = 64 << 30  # bytes the files of one layer really take once unpacked (holes not counted)
    image: int = 256 << 30  # the same, summed over the layers of one image
    entries: int = 1_000_000  # entries in one layer


@dataclass
class Member:
    name: str
    type: bytes
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: float = 0
    linkname: str = ""
    size: int = 0  # data bytes in the archive
    xattrs: dict[str, bytes] = field(default_factory=dict)
    sparse: list[tuple[int, int]] | None = None  # (offset, length) of each data segment of a sparse file
    real_size: int = 0  # a sparse file's apparent size

    def isreg(self) -> bool:
        return self.type in REGULAR

    def isdir(self) -> bool:
        return self.type == b"5"

    def issym(self) -> bool:
        return self.type == b"2"

    def islnk(self) -> bool:
        return self.type == b"1"

    def isdev(self) -> bool:
        return self.type in (b"3", b"4")

    def isfifo(self) -> bool:
        return self.type == b"6"

    def data_size(self) -> int:
        """Bytes the file takes once written: its data, not its holes."""
        return sum(length for _, length in self.sparse) if self.sparse is not None else self.size


def malformed(what: str) -> UnpackError:
    return UnpackError(f"malformed layer tar: {what}")


class TarReader:
    def __init__(self, stream: Readable, limits: Limits | None = None) -> None:
        self.stream = stream
        self.limits = limits or Limits()
        self.remaining = 0  # data bytes of the current member not yet read
        self.padding = 0
        self.global_pax: dict[str, bytes] = {}

    def members(self) -> Iterator[Member]:
        while True:
            self.skip()
            member = self._next()
            if member is None:
                return
            yield member

    def copy(self, member: Member, fd: int) -> int:
        """Write the member's data to `fd`; the number of bytes written."""
        if member.sparse is None:
            return self._copy_run(fd, self.remaining)
        written = 0
        for offset, length in member.sparse:
            os.lseek(fd, offset, os.SEEK_SET)
            written += self._copy_run(fd, length)
        os.ftruncate(fd, member.real_size)
        return written

    def skip(self) -> None:
        """Read past what is left of the current member's data and padding."""
        left = self.remaining + self.padding
        while left:
            left -= len(self._read(min(left, CHUNK)))
        self.remaining = self.padding = 0

    # ---- reading ---------------------------------------------------------------------------------------------

    def _read(self, size: int) -> bytes:
        data = self.stream.read(size)
        if len(data) == size:
            return data
        parts = [data]
        got = len(data)
        while got < size:
            more = self.stream.read(size - got)
            if not more:
                raise malformed("unexpected end of data")
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def _copy_run(self, fd: int, size: int) -> int:
        if size > self.remaining:
            raise malformed("a sparse map names more data than the entry holds")
        left = size
        while left:
            data = memoryview(self._read(min(left, CHUNK)))
            left -= len(data)
            while data:
                data = data[os.write(fd, data) :]
        self.remaining -= size
        return size

    def _meta(self, size: int, pending: int) -> bytes:
        """The body of a meta header, refused unread when it (with the meta headers before it) is too large."""
        if pending + size > self.limits.header:
            raise UnpackError(
                f"a tar header of {pending + size} bytes is over the limit of {self.limits.header} (unpack.header)"
            )
        data = self._read(size)
        self._read(-size % BLOCK)
        return data

    # ---- headers ---------------------------------------------------------------------------------------------

    def _next(self) -> Member | None:
        pax: dict[str, bytes] = {}
        segments: list[int] = []  # PAX sparse 0.0: GNU.sparse.offset and .numbytes, in order
        long_name = long_link = None
        pending = 0
        while True:
            block = self.stream.read(BLOCK)
            if not block or block == ZERO_BLOCK:
                return None  # end of archive (tar's two zero blocks, or none at all)
            if len(block) < BLOCK:
                block += self._read(BLOCK - len(block))
            header = _parse_header(block)
            kind = block[156:157]
            if kind not in META:
                return self._member(header, kind, block, pax, segments, long_name, long_link, pending)
            body = self._meta(header.size, pending)
            pending += header.size
            if kind == b"x":
                for key, value in _pax_records(body):
                    if key in ("GNU.sparse.offset", "GNU.sparse.numbytes"):
                        segments.append(_pax_int(key, value))
                    pax[key] = value
            elif kind == b"g":
                self.global_pax.update(_pax_records(body))
            elif kind == b"L":
                long_name = _text(body.split(b"\0", 1)[0])
            else:
                long_link = _text(body.split(b"\0", 1)[0])

    def _member(
        self,
        m: Member,
        kind: bytes,
        block: bytes,
        local: dict[str, bytes],
        segments: list[int],
        long_name: str | None,
        long_link: str | None,
        pending: int,
    ) -> Member:
        pax = {k: v for k, v in {**self.global_pax, **local}.items() if v}
        m.name = _text(pax.get("GNU.sparse.name") or pax.get("path") or b"") or long_name or m.name
        m.linkname = _text(pax.get("linkpath") or b"") or long_link or m.linkname
        for key in ("size", "uid", "gid"):
            if key in pax:
                setattr(m, key, _pax_int(key, pax[key]))
        if "mtime" in pax:
            m.mtime = _pax_time(pax["mtime"])
        m.xattrs = {k[len("SCHILY.xattr.") :]: v for k, v in pax.items() if k.startswith("SCHILY.xattr.")}
        if kind == b"\0" and m.name.endswith("/"):
            kind = b"5"  # the old v7 way to say directory
        self.remaining, self.padding = m.size, -m.size % BLOCK
        if kind == b"S":
            kind = b"0"
            self._gnu_sparse(m, block, pending)
        elif "GNU.sparse.major" in pax or "GNU.sparse.map" in pax or segments:
            self._pax_sparse(m, pax, segments, pending)
        m.type = kind
        if m.isreg():
            _check_sparse(m)
        return m

    def _gnu_sparse(self, m: Member, block: bytes, pending: int) -> None:
        """The old GNU format: four (offset, length) pairs in the header, then extension blocks of 21 each."""
        numbers = _sparse_fields(block[386:482])
        m.real_size = _number(block[483:495])
        extended = block[482]
        while extended:
            pending += BLOCK
            if pending > self.limits.header:
                raise UnpackError(f"a sparse map is over the limit of {self.limits.header} bytes (unpack.header)")
            ext = self._read(BLOCK)
            numbers += _sparse_fields(ext[:504])
            extended = ext[504]
        m.sparse = _pairs(numbers)

    def _pax_sparse(self, m: Member, pax: dict[str, bytes], segments: list[int], pending: int) -> None:
        if pax.get("GNU.sparse.major") == b"1":
            m.real_size = _pax_int("GNU.sparse.realsize", pax.get("GNU.sparse.realsize", b""))
            m.sparse = _pairs(self._sparse_map_1_0(pending))
            m.size = self.remaining  # the data that follows the map
            return
        m.real_size = _pax_int("GNU.sparse.size", pax.get("GNU.sparse.size", b""))
        if "GNU.sparse.map" in pax:
            text = pax["GNU.sparse.map"]
            segments = [_pax_int("GNU.sparse.map", n) for n in text.split(b",")] if text else []
        m.sparse = _pairs(segments)

    def _sparse_map_1_0(self, pending: int) -> list[int]:
        """PAX sparse 1.0: the map leads the data, decimal numbers a line each, padded to a block."""
        text = b""
        while True:
            wanted = None
            lines = text.split(b"\n")
            if len(lines) > 1:
                count = _pax_int("GNU.sparse map", lines[0])
                wanted = 1 + 2 * count
                if len(lines) > wanted:
                    return [_pax_int("GNU.sparse map", n) for n in lines[1:wanted]]
            if pending + len(text) + BLOCK > self.limits.header or self.remaining < BLOCK:
                raise UnpackError(f"a sparse map is over the limit of {self.limits.header} bytes (unpack.header)")
            text += self._read(BLOCK)
            self.remaining -= BLOCK


def _parse_header(block: bytes) -> Member:
    stored = _number(block[148:156])
    unsigned = sum(block[:148]) + 256 + sum(block[156:])
    if stored != unsigned and stored != unsigned - 256 * sum(b > 127 for b in block[:148] + block[156:]):
        raise malformed("a header's checksum is wrong")  # (some old tars summed signed chars)
    name = _text(block[:100].split(b"\0", 1)[0])
    if block[257:263] == b"ustar\0":
        prefix = _text(block[345:500].split(b"\0", 1)[0])
        name = f"{prefix}/{name}" if prefix else name
    size = _number(block[124:136])
    if size < 0:
        raise malformed("a negative size")
    return Member(
        name=name,
        type=block[156:157],
        mode=_number(block[100:108]),
        uid=_number(block[108:116]),
        gid=_number(block[116:124]),
        mtime=_number(block[136:148]),
        linkname=_text(block[157:257].split(b"\0", 1)[0]),
        size=size,
    )


def _number(field: bytes) -> int:
    """An octal field, or GNU's base-256 (top bit set; 0xff leads a negative number)."""
    if field and field[0] & 0x80:
        if field[0] == 0xFF:
            return int.from_bytes(field, "big", signed=True)
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise malformed(f"a number field holds {text!r}") from None


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _pax_records(body: bytes) -> list[tuple[str, bytes]]:
    """``"%d %s=%s\\n"`` records, the length counting the whole record."""
    records = []
    pos = 0
    while pos < len(body) and body[pos] != 0:
        space = body.find(b" ", pos, pos + 21)
        length = int(body[pos:space]) if space > pos and _DECIMAL.fullmatch(body[pos:space]) else 0
        end = pos + length
        if length <= space - pos or end > len(body) or body[end - 1 : end] != b"\n" or b"=" not in body[space:end]:
            raise malformed("a PAX record is malformed")
        key, _, value = body[space + 1 : end - 1].partition(b"=")
        records.append((_text(key), value))
        pos = end
    return records


def _pax_int(key: str, value: bytes) -> int:
    if not _DECIMAL.fullmatch(value):
        raise malformed(f"the PAX value of {key} is not a number: {value[:40]!r}")
    return int(value)


def _pax_time(value: bytes) -> float:
    if not _TIME.fullmatch(value):
        raise malformed(f"the PAX mtime is not a time: {value[:40]!r}")
    return float(value)


def _sparse_fields(raw: bytes) -> list[int]:
    numbers = []
    for at in range(0, len(raw) - 23, 24):
        offset, length = raw[at : at + 12], raw[at + 12 : at + 24]
        if offset[0] == 0 and length[0] == 0:
            break
        numbers += [_number(offset), _number(length)]
    return numbers


def _pairs(numbers: list[int]) -> list[tuple[int, int]]:
    if len(numbers) % 2:
        raise malformed("a sparse map has an offset without a length")
    return list(zip(numbers[::2], numbers[1::2], strict=True))


def _check_sparse(m: Member) -> None:
    """Segments in order, inside the real size, and holding exactly the entry's data."""
    if m.sparse is None:
        return
    end = 0
    for offset, length in m.sparse:
        if offset < end or length < 0:
            raise malformed(f"{m.name}: the sparse map's segments overlap or go backwards")
        end = offset + length
    if end > m.real_size or m.data_size() != m.size:
        raise malformed(f"{m.name}: the sparse map does not match the entry's data")


__all__ = ["Limits", "Member", "TarReader"]
