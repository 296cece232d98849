"""OCI image-spec layer.md whiteouts: our per-layer directories stacked with overlayfs give the same tree that
umoci unpacks (applying the whiteouts itself) from the same OCI layout."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.ociruntime import mount_overlay, unmount
from runtime.unpack import inherit_parents, unpack_blob
from tests.e2e.procs import require, require_root

from .layers import directory, file, hardlink, opaque, symlink, tar_bytes, whiteout

LAYERS = [
    [
        directory("etc"),
        file("etc/motd", b"welcome"),
        file("etc/keep", b"kept", mode=0o600, uid=1000, gid=1000),
        directory("var/cache", mode=0o700),
        file("var/cache/a", b"a"),
        directory("var/cache/sub"),
        file("var/cache/sub/b", b"b"),
        directory("usr/lib"),
        file("usr/lib/libx.so", b"x", mode=0o755),
        symlink("lib", "usr/lib"),
        hardlink("etc/motd-link", "etc/motd"),
        file("bin/su", b"suid", mode=0o4755),
    ],
    [
        whiteout("etc/motd"),
        opaque("var/cache"),
        file("var/cache/new", b"new"),
        whiteout("usr/lib"),
        file("usr/lib2/liby.so", b"y"),
        whiteout("lib"),
    ],
    [
        file("etc/motd", b"back again", mode=0o640),
        directory("usr/lib"),
        file("usr/lib/only-new", b"n"),
        file("etc/keep", b"changed", mode=0o644, uid=0, gid=0),
    ],
]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_layout(path: Path, tars: list[bytes]) -> list[Path]:
    """An OCI image layout with one image tagged `t`; returns the layer blob paths."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, object]:
        (blobs / sha256(data)[7:]).write_bytes(data)
        return {"digest": sha256(data), "size": len(data)}

    layers = [gzip.compress(t, mtime=0) for t in tars]
    layer_descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(g)} for g in layers]
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in tars]}}
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(config)},
            "layers": layer_descs,
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **put(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "t"},
            }
        ],
    }
    (path / "index.json").write_text(json.dumps(index))
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return [blobs / sha256(g)[7:] for g in layers]


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    found: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                detail: object = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                detail = p.read_bytes()
            else:
                detail = None
            found[str(p.relative_to(root))] = (stat.filemode(st.st_mode), st.st_uid, st.st_gid, detail)
    return found


@pytest.fixture
def overlay(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "merged"
    target.mkdir()
    yield target
    unmount(target)


def test_stacked_layers_match_umoci(tmp_path: Path, overlay: Path) -> None:
    require_root("overlay mounts and whiteout devices")
    umoci = require("umoci")
    tars = [tar_bytes(layer) for layer in LAYERS]
    blobs = write_layout(tmp_path / "layout", tars)
    subprocess.run([umoci, "unpack", "--image", f"{tmp_path / 'layout'}:t", tmp_path / "bundle"], check=True)

    layers = tmp_path / "layers"
    names: list[str] = []
    for i, blob in enumerate(blobs):
        dest = layers / f"l{i}"
        dest.mkdir(parents=True)
        diff_id, stats = unpack_blob(blob, dest)
        assert diff_id == sha256(tars[i])
        inherit_parents(dest, stats.implicit_dirs, [layers / name for name in names])
        names.insert(0, dest.name)
    (tmp_path / "upper").mkdir()
    (tmp_path / "work").mkdir()
    mount_overlay(overlay, layers, names, tmp_path / "upper", tmp_path / "work")

    ours, theirs = tree(overlay), tree(tmp_path / "bundle" / "rootfs")
    assert ours == theirs
    assert "etc/motd" in ours and ours["etc/motd"][3] == b"back again"
    assert "var/cache/a" not in ours and "usr/lib/libx.so" not in ours and "lib" not in ours
