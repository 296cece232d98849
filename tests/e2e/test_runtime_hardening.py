"""The runtime's store is no way to root (CVE-2021-41091): an image carrying a setuid-root binary, a file capability
and a 1777 directory is pulled from the real registry; no other host user can execute, read or write any of it,
while `runtime run` still sees the setuid bit inside the container. A tree 3,000 deep unpacks, runs and goes."""

from __future__ import annotations

import io
import os
import struct
import tarfile
from pathlib import Path

import pytest

from runtime.pull import this_platform

from .images import make_oci_image, tar_files
from .procs import require, run
from .runtime_cli import RuntimeCli
from .server import RegistryServer

pytestmark = pytest.mark.e2e

DEPTH = 3000
# vfs_cap_data revision 2, effective, permitted = CAP_NET_RAW (13): what `setcap cap_net_raw+ep` writes
CAPABILITY = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)
OTHER_USER = "nobody"


def hostile_layer(busybox: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, kind: bytes, mode: int, data: bytes = b"", pax: dict[str, str] | None = None) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.size, info.pax_headers = kind, mode, len(data), pax or {}
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("usr", tarfile.DIRTYPE, 0o755)
        add("usr/bin", tarfile.DIRTYPE, 0o755)
        add("usr/bin/suid-shell", tarfile.REGTYPE, 0o4755, busybox)
        capability = {"SCHILY.xattr.security.capability": CAPABILITY.decode("latin-1")}
        add("usr/bin/capped", tarfile.REGTYPE, 0o755, busybox, capability)
        add("shared", tarfile.DIRTYPE, 0o1777)
        for depth in range(DEPTH + 1):
            add("/".join(["deep", *["d"] * depth]), tarfile.DIRTYPE, 0o755)
        add("/".join(["deep", *["d"] * DEPTH, "leaf"]), tarfile.REGTYPE, 0o644, b"bottom\n")
    return buf.getvalue()


@pytest.fixture
def hostile(registry_server: RegistryServer, busybox_rootfs: Path) -> str:
    busybox = (busybox_rootfs / "bin" / "busybox").read_bytes()
    image = make_oci_image(
        [tar_files({}, rootfs=busybox_rootfs), hostile_layer(busybox)], arch=this_platform()[1], cmd=["/bin/sh"]
    )
    with registry_server.client() as client:
        client.push_image("e2e/hostile", image, "v1")
    return f"{registry_server.host}/e2e/hostile:v1"


def as_other_user(*command: str | Path) -> tuple[int, str]:
    result = run(["runuser", "-u", OTHER_USER, "--", *map(str, command)], check=False)
    return result.returncode, result.stderr


def test_no_other_user_reaches_what_a_pulled_image_carries(rt: RuntimeCli, hostile: str) -> None:
    require("runuser")
    rt.base.chmod(0o755)  # the store's parent is open to all, as /var/lib is: only the store's own modes protect it
    rt("pull", "-q", hostile)
    layer = next(p for p in (rt.root / "layers").iterdir() if (p / "usr/bin/suid-shell").exists())
    suid, capped, shared = layer / "usr/bin/suid-shell", layer / "usr/bin/capped", layer / "shared"
    assert suid.stat().st_mode & 0o7777 == 0o4755 and suid.stat().st_uid == 0
    assert shared.stat().st_mode & 0o7777 == 0o1777
    assert os.getxattr(capped, "security.capability") == CAPABILITY

    assert as_other_user("test", "-x", rt.base)[0] == 0, "the fixture's parent must be reachable"
    for command in (
        [suid, "id", "-u"],
        [capped, "true"],
        ["cat", suid],
        ["ls", layer],
        ["ls", rt.root / "layers"],
        ["sh", "-c", f"echo planted > {shared}/planted"],
        ["cat", rt.root / "images.json"],
    ):
        status, stderr = as_other_user(*command)
        assert status != 0 and "Permission denied" in stderr, (command, status, stderr)
    assert not (shared / "planted").exists()

    out = rt("run", "--rm", "-q", hostile, "/bin/busybox", "stat", "-c", "%a %u", "/usr/bin/suid-shell", "/shared")
    assert out.stdout.split("\n")[:2] == ["4755 0", "1777 0"]


def test_a_containers_configuration_is_private(rt: RuntimeCli, hostile: str) -> None:
    require("runuser")
    rt.base.chmod(0o755)
    cid = rt("run", "-d", "-q", "-e", "SECRET=hunter2", hostile, "/bin/sh", "-c", "sleep 30").stdout.strip()
    config = rt.root / "containers" / cid / "config.json"
    assert "SECRET=hunter2" in config.read_text()
    assert config.stat().st_mode & 0o777 == 0o600
    status, stderr = as_other_user("cat", config)
    assert status != 0 and "Permission denied" in stderr
    rt("rm", "-f", cid)


def test_a_tree_3000_deep_unpacks_runs_and_goes_with_rmi(rt: RuntimeCli, hostile: str) -> None:
    hop = "/".join(["d"] * 100)  # a shell's cd costs a getcwd: 30 hops of 100, not 3,000 of one
    script = f"cd /deep && for i in $(/bin/busybox seq {DEPTH // 100}); do cd -P {hop} || exit 3; done && cat leaf"
    assert rt("run", "--rm", "-q", hostile, "/bin/sh", "-c", script).stdout == "bottom\n"
    rt("rmi", hostile)
    assert rt.layer_dirs() <= {"empty"}
