"""The bounded tar reader: GNU tar's sparse formats unpack sparse, and a header larger than its bound is refused
before a byte of it is read (Python's tarfile reads PAX headers and GNU long names whole)."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from runtime.errors import UnpackError
from runtime.tarstream import BLOCK, Limits, TarReader
from runtime.unpack import unpack

from .layers import directory, file, tar_bytes

GIB = 1 << 30
SPARSE_FORMATS = {
    "gnu": ["--format=gnu"],
    "pax-1.0": ["--format=posix"],
    "pax-0.1": ["--format=posix", "--sparse-version=0.1"],
    "pax-0.0": ["--format=posix", "--sparse-version=0.0"],
}


def header(name: str, kind: bytes, size: int) -> bytes:
    """One ustar header block; its size field may claim anything (the body need not follow)."""
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    return info.tobuf(format=tarfile.GNU_FORMAT)


@pytest.fixture(scope="module")
def sparse_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 GiB file holding 5 bytes at 1,000,000 and 4 at its very end, the rest holes."""
    if shutil.which("tar") is None:
        pytest.fail("GNU tar is needed to make sparse archives")
    src = tmp_path_factory.mktemp("sparse")
    with (src / "big").open("wb") as f:
        f.truncate(2 * GIB)
        f.seek(1_000_000)
        f.write(b"hello")
        f.seek(2 * GIB - 4)
        f.write(b"tail")
    return src


@pytest.mark.parametrize("args", SPARSE_FORMATS.values(), ids=SPARSE_FORMATS.keys())
def test_a_sparse_2_gib_file_unpacks_taking_its_real_blocks_only(
    sparse_source: Path, tmp_path: Path, args: list[str]
) -> None:
    layer = tmp_path / "layer.tar"
    subprocess.run(["tar", "--sparse", *args, "-cf", layer, "-C", sparse_source, "big"], check=True)
    assert layer.stat().st_size < 64 * 1024
    out = tmp_path / "out"
    out.mkdir()
    with layer.open("rb") as f:
        stats = unpack(f, out)
    st = (out / "big").stat()
    assert st.st_size == 2 * GIB
    assert st.st_blocks * 512 <= 1 << 20, "the holes were written out"
    assert stats.bytes <= 64 * 1024, "a sparse file counts the data it holds, not its apparent size"
    with (out / "big").open("rb") as f:
        assert f.read(4096) == bytes(4096)
        f.seek(1_000_000)
        assert f.read(5) == b"hello"
        f.seek(2 * GIB - 4)
        assert f.read() == b"tail"


@pytest.mark.parametrize("kind", [b"x", b"g", b"L", b"K"], ids=["pax", "pax-global", "gnu-longname", "gnu-longlink"])
def test_a_header_over_the_bound_is_refused_unread(kind: bytes) -> None:
    class Endless:
        """The header, then zeros for ever: counts what the reader asked for."""

        def __init__(self) -> None:
            self.head = header("././@x", kind, 2 * GIB)
            self.served = 0

        def read(self, size: int = -1) -> bytes:
            assert 0 <= size <= 1 << 20, f"read({size})"
            data = self.head[self.served : self.served + size] or bytes(size)
            self.served += len(data)
            return data

    stream = Endless()
    with pytest.raises(UnpackError, match=r"over the limit of 1048576 \(unpack.header\)"):
        list(TarReader(stream).members())
    assert stream.served == BLOCK


def test_headers_under_the_bound_are_read_and_their_sum_is_bounded_too() -> None:
    long_name = "d/" * 300 + "f"
    data = tar_bytes([file(long_name, b"x")])
    assert [m.name for m in TarReader(io.BytesIO(data)).members()] == [long_name]
    with pytest.raises(UnpackError, match=r"unpack.header"):
        list(TarReader(io.BytesIO(data), Limits(header=300)).members())


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b[:148] + b"77777777" + b[156:], "checksum"),
        (lambda b: b[:700], "unexpected end of data"),
        (lambda b: b[:BLOCK] + b"99 path=x\n" + b[BLOCK + 10 :], "PAX record"),
    ],
    ids=["checksum", "truncated", "pax-record"],
)
def test_malformed_archives_are_the_runtimes_own_error(mangle: object, message: str, tmp_path: Path) -> None:
    data = tar_bytes([file("a" * 120, b"contents" * 100)])  # a PAX header (the name is over 100), then the file
    with pytest.raises(UnpackError, match=message):
        unpack(io.BytesIO(mangle(data)), tmp_path)  # type: ignore[operator]


def test_limits_on_the_entries_and_the_bytes_of_a_layer(tmp_path: Path) -> None:
    entries = [directory("d"), *(file(f"d/{i}", b"0123456789") for i in range(10))]
    (tmp_path / "a").mkdir()
    unpack(io.BytesIO(tar_bytes(entries)), tmp_path / "a", Limits(entries=11, layer=100))
    (tmp_path / "b").mkdir()
    with pytest.raises(UnpackError, match=r"more than 10 entries \(unpack.entries\)"):
        unpack(io.BytesIO(tar_bytes(entries)), tmp_path / "b", Limits(entries=10))
    (tmp_path / "c").mkdir()
    with pytest.raises(UnpackError, match=r"more than 99 bytes \(unpack.layer\)"):
        unpack(io.BytesIO(tar_bytes(entries)), tmp_path / "c", Limits(layer=99))
