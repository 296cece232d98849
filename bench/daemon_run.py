"""``docker run --rm IMAGE true`` through ``runtime daemon`` against the real dockerd on the same machine.

``.venv/bin/python bench/daemon_run.py [--runs N]`` (root; dockerd, runc, busybox). It starts our registry, has our
runtime import a busybox image and push it there, then starts ``runtime daemon`` and a private dockerd
(``--iptables=false --bridge=none --storage-driver=vfs``, private data, exec root and socket: the e2e tier's
helpers), has each ``docker pull`` the image from our registry over 127.0.0.1, and times the same stock docker CLI
running ``docker run --rm --network none IMAGE true`` against each, alternately, after one warm-up run each. It
prints the median and the 95th percentile of the wall time of the CLI command, and our median over dockerd's.
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
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.e2e.daemons import DockerDaemon  # noqa: E402
from tests.e2e.images import build_busybox_rootfs  # noqa: E402
from tests.e2e.procs import remove_tree  # noqa: E402
from tests.e2e.runtime_cli import RuntimeCli  # noqa: E402
from tests.e2e.runtime_daemon import RuntimeDaemon  # noqa: E402
from tests.e2e.server import RegistryServer  # noqa: E402


def publish(server: RegistryServer, work: Path) -> str:
    """A one-layer busybox image (with `true`) imported by our runtime and pushed to our registry; its reference."""
    rootfs = build_busybox_rootfs(work / "rootfs", Path(shutil.which("busybox") or "/bin/busybox").resolve())
    (rootfs / "bin" / "true").symlink_to("busybox")
    cli = RuntimeCli(work / "publisher")
    ref = f"{server.host}/bench/busybox:1"
    cli("import", "--cmd", '["true"]', rootfs, ref)
    cli("push", ref)
    return ref


def timed_run(cli: str, env: dict[str, str], ref: str) -> float:
    started = time.perf_counter()
    subprocess.run([cli, "run", "--rm", "--network", "none", ref, "true"], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    if os.geteuid() != 0:
        raise SystemExit("bench/daemon_run.py needs root (dockerd, runc, overlay mounts)")
    work = Path(tempfile.mkdtemp(prefix="bench-rtd-", dir="/tmp"))
    server = RegistryServer(work / "registry", "ours")
    (work / "docker").mkdir()
    (work / "ours").mkdir()
    docker = DockerDaemon(work / "docker")
    ours = RuntimeDaemon(work / "ours")
    times: dict[str, list[float]] = {"runtime daemon": [], "dockerd": []}
    try:
        server.start()
        ref = publish(server, work)
        ours.start()
        docker.start()
        targets = {"runtime daemon": ours.env, "dockerd": docker.env}
        for env in targets.values():
            subprocess.run([docker.cli, "pull", "-q", ref], env=env, check=True, capture_output=True)
            timed_run(docker.cli, env, ref)  # warm-up: page cache, first container
        for _ in range(runs):
            for name, env in targets.items():
                times[name].append(timed_run(docker.cli, env, ref))
    finally:
        ours.stop()
        docker.stop()
        server.stop()
        remove_tree(work)
    print(f"docker run --rm --network none IMAGE true, {runs} runs each, alternating (seconds)\n")
    print(f"{'daemon':<18}{'median':>10}{'p95':>10}{'min':>10}")
    for name, values in times.items():
        print(f"{name:<18}{statistics.median(values):10.3f}{p95(values):10.3f}{min(values):10.3f}")
    ratio = statistics.median(times["runtime daemon"]) / statistics.median(times["dockerd"])
    print(f"\nruntime daemon / dockerd (median): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
