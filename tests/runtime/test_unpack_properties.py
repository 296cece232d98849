"""Property: any sequence of tar headers, well formed or with bytes flipped, either unpacks inside the layer
directory or fails with the runtime's own `UnpackError`; nothing outside the layer changes either way."""

from __future__ import annotations

import contextlib
import io
import tarfile
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from runtime.errors import UnpackError
from runtime.tarstream import Limits
from runtime.unpack import unpack

from .layers import Entry, tar_bytes

KINDS = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE]
COMPONENTS = ["a", "b", "lib", "..", ".", "", ".wh.a", ".wh..wh..opq", ".wh..wh.plnk", "n" * 256]
SMALL = Limits(header=4096, layer=1 << 16, image=1 << 16, entries=64)
PROPERTY = settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def paths(outside: Path) -> st.SearchStrategy[str]:
    relative = st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=5).map("/".join)
    absolute = relative.map(lambda p: "/" + p)
    escapes = st.sampled_from([str(outside), str(outside / "victim"), "../outside/victim", "/etc", "/"])
    return st.one_of(relative, absolute, escapes)


def entries(outside: Path) -> st.SearchStrategy[list[Entry]]:
    entry = st.builds(
        Entry,
        name=paths(outside),
        kind=st.sampled_from(KINDS),
        data=st.binary(max_size=64),
        linkname=paths(outside),
        mode=st.integers(0, 0o7777),
        uid=st.integers(0, 70000),
        gid=st.integers(0, 70000),
        xattrs=st.dictionaries(
            st.sampled_from(["user.x", "trusted.overlay.opaque", "security.capability"]),
            st.binary(max_size=24),
            max_size=2,
        ),  # fmt: skip
    )
    return st.lists(entry, max_size=12)


def flips() -> st.SearchStrategy[list[tuple[float, int]]]:
    """Where to overwrite a byte (as a fraction of the archive) and with what."""
    return st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=4)


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() if p.is_file() else b"" for p in sorted(path.rglob("*"))}


@PROPERTY
@given(data=st.data())
def test_any_archive_unpacks_inside_the_root_or_fails_with_unpack_error(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        layer, outside = base / "layer", base / "outside"
        layer.mkdir()
        outside.mkdir()
        (outside / "victim").write_text("untouched")
        before = snapshot(outside)
        try:
            archive = bytearray(tar_bytes(data.draw(entries(outside))))
        except (ValueError, tarfile.TarError, UnicodeError):
            reject()  # tarfile itself cannot write it
        for where, value in data.draw(flips()):
            archive[int(where * len(archive))] = value
        with contextlib.suppress(UnpackError):  # any other exception fails the property
            unpack(io.BytesIO(bytes(archive)), layer, SMALL)
        assert snapshot(outside) == before
        assert sorted(p.name for p in base.iterdir()) == ["layer", "outside"]
