"""The companion runtime against docker on the same registry: ``.venv/bin/python bench/runtime.py [--rounds N]``.

Needs root, dockerd, runc and busybox-static. It starts our registry and a private dockerd with overlay2
storage (the e2e tier's helpers), has docker build and push a busybox image with five 40 MiB layers of random
bytes, then measures, each round on a fresh store / after `docker rmi`:

- pull + unpack: `runtime pull -q` vs `docker pull` (wall time and MiB/s of compressed layer bytes);
- start: `runtime run --rm` vs `docker run --rm --network none`, time from the command's start to the first byte
  the container prints (the process is running), and to the command's exit.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.e2e.daemons import DockerDaemon  # noqa: E402
from tests.e2e.images import build_busybox_rootfs  # noqa: E402
from tests.e2e.procs import base_env, remove_tree  # noqa: E402
from tests.e2e.server import RegistryServer  # noqa: E402

MiB = 1 << 20
LAYERS = 5
LAYER_SIZE = 40 * MiB


def build_image(docker: DockerDaemon, work: Path, tag: str) -> None:
    context = work / "ctx"
    build_busybox_rootfs(context / "rootfs", Path(shutil.which("busybox") or "/bin/busybox").resolve())
    lines = ["FROM scratch", "COPY rootfs/ /"]
    for i in range(LAYERS):
        (context / f"blob{i}.bin").write_bytes(os.urandom(LAYER_SIZE))
        lines.append(f"COPY blob{i}.bin /data/blob{i}.bin")
    (context / "Dockerfile").write_text("\n".join(lines) + "\n")
    docker.run("build", "--tag", tag, context, timeout=600)
    shutil.rmtree(context)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def first_byte(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds to the container's first output byte, seconds to exit)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    proc.stdout.read(1)
    running = time.perf_counter() - started
    proc.stdout.read()
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return running, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    if os.geteuid() != 0:
        raise SystemExit("bench/runtime.py needs root (dockerd, overlay mounts, runc)")
    work = Path(tempfile.mkdtemp(prefix="bench-rt-", dir="/tmp"))
    server = RegistryServer(work / "registry", "ours")
    (work / "docker").mkdir()
    docker = DockerDaemon(work / "docker")
    # overlay2, as a production docker runs (the e2e tier's vfs copies every layer and every container's rootfs)
    docker.daemon.args = [a.replace("--storage-driver=vfs", "--storage-driver=overlay2") for a in docker.daemon.args]
    results: dict[str, list[float]] = {}
    try:
        server.start()
        docker.start()
        ref = f"{server.host}/bench/big:v1"
        build_image(docker, work, ref)
        docker.run("push", ref, timeout=600)
        docker.run("rmi", "--force", ref)
        size = LAYERS * LAYER_SIZE
        env = {**base_env(), "RUNTIME_CONFIG": str(work / "rt-config.json")}
        for i in range(rounds):
            store = work / f"store{i}"
            rt = [sys.executable, "-m", "runtime", "--root", str(store)]
            results.setdefault("docker pull", []).append(timed(lambda: docker.run("pull", "-q", ref, timeout=600)))
            results.setdefault("runtime pull", []).append(
                timed(partial(subprocess.run, [*rt, "pull", "-q", ref], check=True, env=env, capture_output=True))
            )
            command = ["sh", "-c", "echo x"]
            d_run, d_exit = first_byte([docker.cli, "run", "--rm", "--network", "none", ref, *command], docker.env)
            r_run, r_exit = first_byte([*rt, "run", "--rm", "-q", ref, *command], env)
            for key, value in (
                ("docker run: to running", d_run),
                ("runtime run: to running", r_run),
                ("docker run --rm: to exit", d_exit),
                ("runtime run --rm: to exit", r_exit),
            ):
                results.setdefault(key, []).append(value)
            docker.run("rmi", "--force", ref)
            remove_tree(store)
    finally:
        docker.stop()
        server.stop()
        remove_tree(work)
    print(f"image: busybox + {LAYERS} x {LAYER_SIZE // MiB} MiB random layers; median of {rounds} rounds\n")
    print(f"{'measure':<28}{'median s':>10}{'MiB/s':>10}")
    for key, values in results.items():
        median = statistics.median(values)
        rate = f"{size / MiB / median:10.1f}" if "pull" in key else f"{'':>10}"
        print(f"{key:<28}{median:10.3f}{rate}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
