"""The companion runtime end to end: docker pushes, `runtime` pulls and runs; `runtime` imports and pushes, docker
pulls and runs. Real registry server process, real runc, overlayfs and cgroups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .daemons import DockerDaemon, docker_push
from .images import AppImage, build_app_image
from .procs import mounts_under, short_tmpdir, wait_until
from .runtime_cli import RuntimeCli
from .server import RegistryServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def pushed(
    dockerd: DockerDaemon, registry_server: RegistryServer, busybox_rootfs: Path, tmp_path: Path
) -> tuple[str, AppImage]:
    """docker builds the three-layer image and pushes it; (reference in our registry, the image)."""
    image = build_app_image(dockerd, busybox_rootfs, tmp_path, f"e2e-local/rt-{tmp_path.name.lower()}:v1")
    ref = f"{registry_server.host}/e2e/rt:v1"
    dockerd.run("tag", image.tag, ref)
    docker_push(dockerd, ref)
    return ref, image


def test_pull_then_run_prints_and_exits_with_the_containers_code(rt: RuntimeCli, pushed: tuple[str, AppImage]) -> None:
    ref, image = pushed
    out = rt("pull", "-q", ref).stdout
    assert out.strip() == ref
    assert len(rt.layer_dirs()) == 3

    assert rt("run", "--rm", ref).stdout.split() == [image.blob_sha256, "/data/blob.bin"]
    failed = rt("run", "--rm", ref, "sh", "-c", "echo to-stderr >&2; exit 7", check=False)
    assert failed.returncode == 7, failed
    assert failed.stderr.strip() == "to-stderr"
    assert rt("ps", "-a", "-q").stdout == ""  # --rm removed both


def test_env_workdir_and_user_are_honoured(rt: RuntimeCli, pushed: tuple[str, AppImage]) -> None:
    ref, _ = pushed
    script = 'echo "$(id -u):$(id -g) $(pwd) $GREETING $HOME"'
    out = rt("run", "--rm", "-q", "-e", "GREETING=hi", "-w", "/work/dir", "-u", "app", ref, "sh", "-c", script)
    assert out.stdout.strip() == "1000:1000 /work/dir hi /home/app"
    out = rt("run", "--rm", "-q", "--entrypoint", "/bin/id", "-u", "0:1000", ref, "-g")
    assert out.stdout.strip() == "1000"


def logs(rt: RuntimeCli, name: str) -> tuple[str, str]:
    result = rt("logs", name)
    return result.stdout, result.stderr


def test_detached_logs_ps_stop_rm(rt: RuntimeCli, pushed: tuple[str, AppImage]) -> None:
    ref, _ = pushed
    script = "echo out-line; echo err-line >&2; trap 'echo got-term; exit 0' TERM; while :; do sleep 0.1; done"
    cid = rt("run", "-d", "-q", "--name", "worker", ref, "sh", "-c", script).stdout.strip()
    assert len(cid) == 64
    assert rt("ps", "-q").stdout.split() == [cid[:12]]
    wait_until(lambda: logs(rt, "worker") == ("out-line\n", "err-line\n"), what="the detached container's logs")
    records = [json.loads(line) for line in (rt.root / "containers" / cid / "log.json").read_text().splitlines()]
    assert {r["stream"] for r in records} == {"stdout", "stderr"}
    assert all(r["time"].endswith("Z") and r["log"].endswith("\n") for r in records)

    rt("stop", "-t", "10", "worker")
    assert "Exited (0)" in rt("ps", "-a").stdout
    assert rt("ps", "-q").stdout == ""
    assert logs(rt, "worker")[0] == "out-line\ngot-term\n"
    assert rt("logs", "--tail", "1", "worker").stdout == "got-term\n"

    rt("run", "-d", "-q", "--name", "stubborn", ref, "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done")
    rt("stop", "-t", "1", "stubborn")  # TERM is ignored: KILL after a second
    assert "Exited (137)" in rt("ps", "-a").stdout

    refused = rt("rm", "worker", "stubborn", "nonexistent", check=False)
    assert refused.returncode == 1 and "no such container: nonexistent" in refused.stderr
    assert rt("ps", "-a", "-q").stdout == ""
    assert mounts_under(rt.root) == []


def test_two_containers_share_layers_and_rmi_frees_them(rt: RuntimeCli, pushed: tuple[str, AppImage]) -> None:
    ref, _ = pushed
    rt("pull", "-q", ref)
    first = rt("run", "-d", "-q", ref, "busybox", "sleep", "60").stdout.strip()
    second = rt("run", "-d", "-q", ref, "busybox", "sleep", "60").stdout.strip()
    layers = rt.inspect(first)["Layers"]
    assert len(layers) == 3 and rt.inspect(second)["Layers"] == layers
    assert {Path(p).name for p in layers} == rt.layer_dirs()
    assert len(mounts_under(rt.root / "containers")) == 2

    refused = rt("rmi", ref, check=False)
    assert refused.returncode == 1 and "is used by container" in refused.stderr
    rt("rm", "-f", first, second)
    assert rt.layer_dirs() == {Path(p).name for p in layers}  # removing containers leaves the layers

    rt("rmi", ref)
    assert rt.layer_dirs() == set()
    assert list((rt.root / "blobs" / "sha256").iterdir()) == []
    missing = rt("run", "--rm", "-q", "nonexistent.invalid/x:1", check=False)
    assert missing.returncode == 1 and "nonexistent.invalid" in missing.stderr


def test_import_push_pull_run_without_docker_then_docker_runs_it(
    rt: RuntimeCli, registry_server: RegistryServer, busybox_rootfs: Path, dockerd: DockerDaemon
) -> None:
    ref = f"{registry_server.host}/e2e/imported:v1"
    rt("import", "--cmd", '["/bin/sh", "-c", "echo imported $(id -u); exit 5"]', busybox_rootfs, ref)
    pushed = rt("push", ref).stdout
    assert "Pushed" in pushed and "digest: sha256:" in pushed
    assert "Layer already exists" in rt("push", ref).stdout
    other = f"{registry_server.host}/e2e/other:v1"
    rt("tag", ref, other)
    assert rt("push", other).stdout.count("Mounted from e2e/imported") == 2  # the layer and the config

    fresh = RuntimeCli(short_tmpdir("e2e-rt-fresh-"))
    try:
        fresh("pull", "-q", ref)
        result = fresh("run", "--rm", ref, check=False)
        assert (result.returncode, result.stdout) == (5, "imported 0\n"), result
    finally:
        fresh.cleanup()

    dockerd.run("pull", ref)
    result = dockerd.run("run", "--rm", "--network", "none", ref, check=False)
    assert (result.returncode, result.stdout) == (5, "imported 0\n"), result
    dockerd.run("rmi", "--force", ref, check=False)
