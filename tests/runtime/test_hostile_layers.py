"""Hostile layers through `runtime pull` and `rmi`: bounded memory, trees thousands deep, the image's budget, and
every failure one line that names the layer and the path, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime import cli, images
from runtime import pull as pull_module
from runtime.config import Settings
from runtime.errors import UnpackError
from runtime.reference import parse
from runtime.store import Store
from runtime.tarstream import Limits

from .fake_registry import FakeRegistry, publish
from .layers import directory, file, symlink, tar_bytes

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPTH = 3000

# `runtime pull` in a child process, so that its peak RSS (VmHWM) is its own: a gzip layer of about 2 MB whose first
# header is a PAX header of 2 GiB (zeros, which gzip members compress a thousandfold).
PULL_HUGE_HEADER = """
import gzip, sys, tarfile
from runtime import cli, pull
from runtime.client import RegistryClient
from tests.runtime.fake_registry import FakeRegistry, publish_blobs

registry = FakeRegistry()
info = tarfile.TarInfo("././@PaxHeader")
info.type, info.size = tarfile.XHDTYPE, 2 << 30
layer = gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT)) + gzip.compress(bytes(8 << 20), 9) * 256
publish_blobs(registry, "app", "v1", [layer], ["sha256:" + "0" * 64])
pull.client_for = lambda settings, name, endpoint: RegistryClient(endpoint, transport=registry.transport())
status = cli.main(["--root", sys.argv[1], "pull", "-q", "registry.test/app:v1"])
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(status, len(layer), peak_kib)
"""


@pytest.fixture(autouse=True)
def private_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNTIME_CONFIG", str(tmp_path / "config.json"))


def test_a_2_mb_layer_with_a_2_gib_pax_header_is_refused_in_little_memory(tmp_path: Path) -> None:
    env = {**os.environ, "RUNTIME_CONFIG": str(tmp_path / "config.json"), "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.run(
        [sys.executable, "-c", PULL_HUGE_HEADER, tmp_path / "store"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
    )
    status, layer_size, peak_kib = (int(n) for n in child.stdout.split())
    assert status == 1, child.stderr
    assert layer_size < 3 << 20
    assert peak_kib < 100 << 10, f"peak RSS {peak_kib} KiB"
    assert child.stderr.count("\n") == 1 and "Traceback" not in child.stderr, child.stderr
    assert "runtime: layer sha256:" in child.stderr
    assert "a tar header of 2147483648 bytes is over the limit of 1048576 (unpack.header)" in child.stderr
    assert os.listdir(tmp_path / "store" / "tmp") == []


def deep_tree(depth: int) -> bytes:
    names = ["deep/" + "/".join(["d"] * i) if i else "deep" for i in range(depth + 1)]
    return tar_bytes([*(directory(n) for n in names), file(names[-1] + "/leaf", b"bottom\n")])


def read_deep(layer: Path, depth: int) -> bytes:
    fd = os.open(layer / "deep", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            fd, old = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd), fd
            os.close(old)
        leaf = os.open("leaf", os.O_RDONLY, dir_fd=fd)
        with os.fdopen(leaf, "rb") as f:
            return f.read()
    finally:
        os.close(fd)


def test_a_tree_3000_deep_pulls_and_rmi_removes_it(tmp_path: Path, registry: FakeRegistry) -> None:
    publish(registry, "deep", "v1", [deep_tree(DEPTH), tar_bytes([file("etc/os-release", b"x")])])
    store = Store(tmp_path / "store")
    record = pull_module.pull(store, Settings(tmp_path / "c.json"), parse("registry.test/deep:v1"), quiet=True)
    assert read_deep(store.layer_dir(record.diff_ids[0]), DEPTH) == b"bottom\n"

    removed = images.remove_image(store, "registry.test/deep:v1")
    assert len([r for r in removed if r.startswith("layer ")]) == 2
    assert list(store.layers.iterdir()) == []


def test_the_image_budget_is_shared_by_its_layers(tmp_path: Path, registry: FakeRegistry) -> None:
    publish(registry, "two", "v1", [tar_bytes([file("a", b"a" * 100)]), tar_bytes([file("b", b"b" * 100)])])
    settings = Settings(tmp_path / "c.json", unpack=Limits(image=150))
    with pytest.raises(UnpackError, match=r"the image unpacks to more than 150 bytes \(unpack.image\)"):
        pull_module.pull(Store(tmp_path / "store"), settings, parse("registry.test/two:v1"), quiet=True)
    assert os.listdir(tmp_path / "store" / "tmp") == []
    assert os.listdir(tmp_path / "store" / "layers") == []


@pytest.mark.parametrize(
    ("entries", "path", "error"),
    [
        ([symlink("a", "b"), symlink("b", "a"), file("a/x", b"x")], "'a/x'", "too many levels of symbolic links"),
        ([file("n" * 300, b"x")], "'" + "n" * 160 + "...(300 characters)'", "File name too long"),
    ],
    ids=["symlink-loop", "name-too-long"],
)
def test_a_layer_the_filesystem_refuses_is_one_line_naming_layer_and_path(
    tmp_path: Path, registry: FakeRegistry, capsys: pytest.CaptureFixture[str], entries: list, path: str, error: str
) -> None:
    layer = tar_bytes(entries)
    publish(registry, "bad", "v1", [layer])
    status = cli.main(["--root", str(tmp_path / "store"), "pull", "-q", "registry.test/bad:v1"])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    compressed = next(d for d, data in registry.blobs.items() if data not in (layer,) and b"rootfs" not in data)
    assert err == f"runtime: layer {compressed}: {path}: {error}\n"


def test_an_operating_system_error_is_one_line_naming_the_command_and_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("not a directory")
    status = cli.main(["--root", str(tmp_path / "file" / "store"), "rmi", "app:v1"])
    err = capsys.readouterr().err
    assert status == 1
    assert err == f"runtime: rmi app:v1: Not a directory: '{tmp_path / 'file' / 'store'}'\n"
