"""OCI image-spec layer.md: changesets, whiteouts, and a layer that must never touch anything outside its directory."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from runtime.errors import UnpackError
from runtime.unpack import unpack

from .layers import Entry, device, directory, file, hardlink, opaque, symlink, tar_bytes, whiteout

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="owners, whiteout devices and trusted xattrs need root")


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """(layer directory, a sibling 'outside' directory with a file a hostile layer would like to change)."""
    layer = tmp_path / "layer"
    layer.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("untouched")
    return layer, outside


def unpack_entries(entries: list[Entry], dest: Path) -> None:
    unpack(io.BytesIO(tar_bytes(entries)), dest)


def snapshot(path: Path) -> dict[str, tuple[int, bytes]]:
    found = {}
    for p in sorted(path.rglob("*")):
        st = p.lstat()
        found[str(p.relative_to(path))] = (st.st_mode, p.read_bytes() if p.is_file() and not p.is_symlink() else b"")
    return found


def test_regular_tree_modes_owners_and_links(sandbox: tuple[Path, Path]) -> None:
    layer, _ = sandbox
    unpack_entries(
        [
            directory("bin"),
            file("bin/busybox", b"ELF", mode=0o4755, uid=0),
            symlink("bin/sh", "busybox"),
            hardlink("bin/hard", "bin/busybox"),
            directory("home/app", mode=0o750, uid=1000, gid=1000),
            file("home/app/.profile", b"x", uid=1000, gid=1000),
            Entry("fifo", kind=b"6", mode=0o600),
        ],
        layer,
    )
    busybox = (layer / "bin/busybox").stat()
    assert stat.S_IMODE(busybox.st_mode) == 0o4755
    assert os.readlink(layer / "bin/sh") == "busybox"
    assert (layer / "bin/hard").stat().st_ino == busybox.st_ino
    assert stat.S_ISFIFO((layer / "fifo").lstat().st_mode)
    assert stat.S_IMODE((layer / "home/app").stat().st_mode) == 0o750
    if ROOT:
        assert (layer / "home/app/.profile").stat().st_uid == 1000
        assert (layer / "home/app").stat().st_gid == 1000


@needs_root
def test_file_capability_xattr_survives_chown(sandbox: tuple[Path, Path]) -> None:
    layer, _ = sandbox
    # VFS_CAP_REVISION_2 with cap_net_bind_service (bit 10) permitted and effective
    cap = bytes.fromhex("01000002") + (1 << 10).to_bytes(4, "little") + bytes(12)
    unpack_entries([file("ping", b"ELF", mode=0o755, uid=0, xattrs={"security.capability": cap})], layer)
    assert os.getxattr(layer / "ping", "security.capability") == cap


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param([file("../outside/victim", b"pwned")], id="dotdot-file"),
        pytest.param([file("a/../../outside/victim", b"pwned")], id="dotdot-inner"),
        pytest.param([symlink("../outside/victim", "x")], id="dotdot-symlink"),
        pytest.param([hardlink("evil", "../outside/victim")], id="hardlink-dotdot"),
    ],
)
def test_dotdot_fails_the_layer(sandbox: tuple[Path, Path], entries: list[Entry]) -> None:
    layer, outside = sandbox
    with pytest.raises(UnpackError, match="climbs out|names no earlier entry"):
        unpack_entries(entries, layer)
    assert (outside / "victim").read_text() == "untouched"


def test_absolute_names_land_inside(sandbox: tuple[Path, Path]) -> None:
    layer, outside = sandbox
    unpack_entries([file(f"{outside}/victim", b"pwned")], layer)
    assert (outside / "victim").read_text() == "untouched"
    assert (layer / str(outside).lstrip("/") / "victim").read_bytes() == b"pwned"


def test_write_through_symlinked_parent_stays_inside(sandbox: tuple[Path, Path]) -> None:
    layer, outside = sandbox
    unpack_entries(
        [
            symlink("abs", str(outside)),
            symlink("rel", "../../../../../../../../" + str(outside).lstrip("/")),
            file("abs/victim", b"pwned-abs"),
            file("rel/victim", b"pwned-rel"),
        ],
        layer,
    )
    assert (outside / "victim").read_text() == "untouched"
    # both resolve against the layer as if it were /: the same path inside it
    assert (layer / str(outside).lstrip("/") / "victim").read_bytes() == b"pwned-rel"


def test_write_over_symlink_replaces_it(sandbox: tuple[Path, Path]) -> None:
    layer, outside = sandbox
    unpack_entries([symlink("victim", str(outside / "victim")), file("victim", b"replaced")], layer)
    assert (outside / "victim").read_text() == "untouched"
    assert not (layer / "victim").is_symlink()
    assert (layer / "victim").read_bytes() == b"replaced"


def test_hardlink_to_outside_through_symlink_is_refused(sandbox: tuple[Path, Path]) -> None:
    layer, outside = sandbox
    with pytest.raises(UnpackError, match="names no earlier entry"):
        unpack_entries([symlink("out", str(outside)), hardlink("evil", "out/victim")], layer)
    with pytest.raises(UnpackError, match="names no earlier entry"):
        unpack_entries([hardlink("evil2", f"{outside}/victim")], layer)
    assert (outside / "victim").stat().st_nlink == 1


def test_hardlink_then_write_does_not_reach_outside(sandbox: tuple[Path, Path]) -> None:
    """A link to an earlier symlink pointing outside, then a file written at the link's name, stays inside."""
    layer, outside = sandbox
    unpack_entries([symlink("s", str(outside / "victim")), hardlink("h", "s"), file("h", b"replaced")], layer)
    assert (outside / "victim").read_text() == "untouched"
    assert (layer / "h").read_bytes() == b"replaced"


def test_device_nodes_are_skipped(sandbox: tuple[Path, Path]) -> None:
    layer, _ = sandbox
    unpack_entries([device("dev/mem", 1, 1), Entry("dev/sda", kind=tarfile.BLKTYPE, devmajor=8)], layer)
    assert not (layer / "dev/mem").exists()
    assert not (layer / "dev/sda").exists()


def test_duplicate_entries_later_wins_without_following(sandbox: tuple[Path, Path]) -> None:
    layer, outside = sandbox
    unpack_entries(
        [
            file("f", b"first"),
            file("f", b"second"),
            directory("d"),
            file("d/inner", b"i"),
            file("d", b"now a file"),
            symlink("link", str(outside)),
            directory("link"),
            file("link/new", b"inside"),
        ],
        layer,
    )
    assert (layer / "f").read_bytes() == b"second"
    assert (layer / "d").read_bytes() == b"now a file"
    assert (layer / "link").is_dir() and not (layer / "link").is_symlink()
    assert (layer / "link/new").read_bytes() == b"inside"
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]


def test_trusted_xattrs_from_a_layer_are_ignored(sandbox: tuple[Path, Path]) -> None:
    layer, _ = sandbox
    unpack_entries([directory("d", xattrs={"trusted.overlay.opaque": b"y"})], layer)
    with pytest.raises(OSError):
        os.getxattr(layer / "d", "trusted.overlay.opaque")


@needs_root
def test_whiteouts_become_overlay_whiteouts(sandbox: tuple[Path, Path]) -> None:
    layer, _ = sandbox
    unpack_entries([directory("etc"), whiteout("etc/motd"), opaque("var/cache"), file("var/cache/new", b"n")], layer)
    motd = (layer / "etc/motd").lstat()
    assert stat.S_ISCHR(motd.st_mode) and motd.st_rdev == os.makedev(0, 0)
    assert os.getxattr(layer / "var/cache", "trusted.overlay.opaque") == b"y"
    assert not (layer / "var/cache/.wh..wh..opq").exists()
    assert (layer / "var/cache/new").read_bytes() == b"n"


def test_invalid_whiteout_is_refused(sandbox: tuple[Path, Path]) -> None:
    layer, _ = sandbox
    with pytest.raises(UnpackError):
        unpack_entries([file("a/.wh..")], layer)
