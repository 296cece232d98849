"""`docker push` and `docker pull` of a 5 x 40 MiB image against a registry, through a private dockerd.

Needs root, dockerd (Debian's docker.io) and busybox-static. The daemon (the e2e tier's helper: own data root,
exec root and socket, no bridge, no iptables, ``DOCKER_BUILDKIT=0``) runs with overlay2 storage, as a production
docker does. The image is built once, FROM scratch: a busybox rootfs layer, then five layers of 40 MiB of random
bytes each (incompressible: docker's gzip cannot shrink them).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.e2e.daemons import DockerDaemon, layer_statuses  # noqa: E402
from tests.e2e.images import build_busybox_rootfs  # noqa: E402
from tests.e2e.procs import remove_tree  # noqa: E402

MiB = 1 << 20
LAYERS = 5
LAYER_SIZE = 40 * MiB
TIMEOUT = 600.0


def missing_tools() -> list[str]:
    """What this needs and does not find (empty when it can run)."""
    problems = [tool for tool in ("dockerd", "docker", "busybox") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        problems.append("root (dockerd)")
    return problems


class DockerBench:
    """A private dockerd holding the test image; `push_then_pull` times both against one registry."""

    def __init__(self) -> None:
        # a short path of its own: the daemon's unix sockets must stay under ~100 characters
        self.work = Path(tempfile.mkdtemp(prefix="regbench-docker-", dir="/tmp"))
        try:
            (self.work / "docker").mkdir()
            self.docker = DockerDaemon(self.work / "docker")
        except BaseException:  # pytest's skip/fail helpers raise BaseExceptions
            shutil.rmtree(self.work)
            raise
        args = self.docker.daemon.args
        self.docker.daemon.args = [a.replace("--storage-driver=vfs", "--storage-driver=overlay2") for a in args]
        self.image_id = ""
        self.layer_count = LAYERS + 1
        self.size = 0

    def start(self) -> None:
        """Start the daemon and build the image (not timed)."""
        self.docker.start()
        context = self.work / "ctx"
        build_busybox_rootfs(context / "rootfs", Path(shutil.which("busybox") or "/bin/busybox").resolve())
        lines = ["FROM scratch", "COPY rootfs/ /"]
        for i in range(LAYERS):
            (context / f"blob{i}.bin").write_bytes(os.urandom(LAYER_SIZE))
            lines.append(f"COPY blob{i}.bin /data/blob{i}.bin")
        lines.append('CMD ["/bin/sh"]')
        (context / "Dockerfile").write_text("\n".join(lines) + "\n")
        self.docker.run("build", "--quiet", "--tag", "bench/docker:build", context, timeout=TIMEOUT)
        shutil.rmtree(context)
        self.image_id = self.docker.inspect("bench/docker:build", "{{.Id}}")
        self.size = int(self.docker.inspect(self.image_id, "{{.Size}}"))

    def push_then_pull(self, host: str, repo: str) -> tuple[float, float]:
        """Seconds for `docker push` of the image to ``host/repo`` (a registry that has none of its blobs), then,
        after `docker rmi` removed the image and its layers from the daemon, seconds for `docker pull` of it."""
        ref = f"{host}/{repo}:v1"
        self.docker.run("tag", self.image_id, ref)
        started = time.perf_counter()
        out = self.docker.run("push", ref, timeout=TIMEOUT).stdout
        push = time.perf_counter() - started
        self._expect(out, "Pushed", f"docker push {ref}")
        self.docker.run("rmi", "--force", self.image_id)
        left = self.docker.run("image", "ls", "--all", "--quiet").stdout.split()
        if left:
            raise RuntimeError(f"docker rmi left images in the daemon: {left}")
        started = time.perf_counter()
        out = self.docker.run("pull", ref, timeout=TIMEOUT).stdout
        pull = time.perf_counter() - started
        self._expect(out, "Pull complete", f"docker pull {ref}")
        if self.docker.inspect(ref, "{{.Id}}") != self.image_id:
            raise RuntimeError(f"docker pull {ref} gave another image than the one pushed")
        return push, pull  # the image stays in the daemon (tagged ref) for the next push

    def _expect(self, output: str, status: str, what: str) -> None:
        """Every layer of the image went over the wire (not 'Layer already exists', 'Mounted from', 'Already
        exists')."""
        statuses = layer_statuses(output)
        if len(statuses) != self.layer_count or set(statuses.values()) != {status}:
            raise RuntimeError(f"{what}: expected {self.layer_count} layers '{status}', got {statuses}\n{output}")

    def stop(self) -> None:
        try:
            self.docker.stop()
        finally:
            remove_tree(self.work)
