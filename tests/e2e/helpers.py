"""Helpers for the end-to-end tier: tools, commands, background daemons, images and the registry HTTP API.

Everything here talks only to processes this tier starts itself, on private sockets and loopback ports.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI") == "true"

#: Debian package that ships each external tool, for the skip/fail message.
DEBIAN_PACKAGE = {
    "docker": "docker.io",
    "dockerd": "docker.io",
    "containerd": "containerd",
    "ctr": "containerd",
    "busybox": "busybox-static",
    "docker-registry": "docker-registry",
}

PROXY_VARS = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})
COMMAND_TIMEOUT = 180.0
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DISTRIBUTION_GAPS = "CNCF distribution 2.8.2 does not implement this (our server must)"
MANIFEST_ACCEPT = ", ".join(
    [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, "application/vnd.docker.distribution.manifest.list.v2+json"]
)

# --------------------------------------------------------------------------------------------------------------------
# Tools and commands
# --------------------------------------------------------------------------------------------------------------------


def missing(reason: str) -> NoReturn:
    """Fail under CI (a missing tool must never hide a test there), skip elsewhere."""
    if CI:
        pytest.fail(f"{reason} (CI=true: a missing prerequisite fails the run)", pytrace=False)
    pytest.skip(reason)


def require(tool: str) -> str:
    """Return the path of `tool`; skip the test (fail it under CI) when it is not installed."""
    path = shutil.which(tool)
    if path is None:
        package = DEBIAN_PACKAGE.get(tool, tool)
        missing(f"{tool} is not installed (apt-get install {package}; scripts/test.sh does it as root)")
    return path


def base_env() -> dict[str, str]:
    """This process's environment without proxy settings: every request here goes to a local process."""
    return {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS}


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        missing(f"{what} needs root")


def docker_cli() -> str:
    """The docker CLI: the one Debian's docker.io ships next to its daemon, else whatever is first in PATH."""
    paired = Path("/usr/bin/docker")
    if paired.is_file() and os.access(paired, os.X_OK):
        return str(paired)
    return require("docker")


class CommandFailed(AssertionError):
    """A command exited non-zero (or timed out); the message carries everything needed to see why."""

    def __init__(self, args: Sequence[str], returncode: int | None, stdout: str, stderr: str) -> None:
        status = "timed out" if returncode is None else f"exited {returncode}"
        super().__init__(
            f"command {status}: {' '.join(args)}\n"
            f"--- stdout ---\n{stdout.rstrip() or '(empty)'}\n--- stderr ---\n{stderr.rstrip() or '(empty)'}"
        )
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = COMMAND_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, capturing text output; raise CommandFailed on failure when `check`."""
    argv = [os.fspath(a) for a in args]
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else base_env(),
            cwd=cwd,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(argv, None, _text(exc.stdout), _text(exc.stderr)) from None
    if check and proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, proc.stdout, proc.stderr)
    return proc


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def short_tmpdir(prefix: str = "e2e-") -> Path:
    """A private directory with a short path: unix socket paths must stay under ~100 characters."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def random_suffix() -> str:
    return secrets.token_hex(4)


# --------------------------------------------------------------------------------------------------------------------
# Background processes
# --------------------------------------------------------------------------------------------------------------------


def tail(path: Path, lines: int = 80) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


class Daemon:
    """A long-running process with stdout and stderr appended to a log file."""

    def __init__(
        self,
        title: str,
        args: Sequence[str | os.PathLike[str]],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.log_title = title
        self.args = [os.fspath(a) for a in args]
        self.log_path = log_path
        self.env = dict(env) if env is not None else base_env()
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None, f"{self.log_title} already started"
        with self.log_path.open("ab") as log:
            log.write(f"==> {' '.join(self.args)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # its own process group, so a hung daemon's children can be reaped with it
            )

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def describe_exit(self) -> str:
        code = self.proc.returncode if self.proc is not None else None
        return f"{self.log_title} exited with status {code}; last lines of {self.log_path}:\n{tail(self.log_path)}"

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, wait up to `timeout`, then SIGKILL the process group this daemon leads."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    daemon: Daemon | None = None,
    timeout: float = STARTUP_TIMEOUT,
) -> None:
    """Poll `ready()` until it returns True; fail early if `daemon` exits, and with its log on timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if daemon is not None and daemon.exited():
            pytest.fail(f"{what}: {daemon.describe_exit()}", pytrace=False)
        if ready():
            return
        if time.monotonic() > deadline:
            detail = f"\nlast lines of {daemon.log_path}:\n{tail(daemon.log_path)}" if daemon is not None else ""
            pytest.fail(f"{what}: not ready after {timeout:.0f}s{detail}", pytrace=False)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first."""
    prefix = os.fspath(root.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")  # octal escapes such as \040
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_tree(root: Path) -> None:
    """Unmount whatever a daemon left below `root`, then delete it (never across a mount that would not go)."""
    if not root.exists():
        return
    for point in mounts_under(root):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    left = mounts_under(root)
    if left:
        raise AssertionError(f"refusing to delete {root}: still mounted: {left}")
    shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------------------
# dockerd
# --------------------------------------------------------------------------------------------------------------------


class DockerDaemon:
    """A private dockerd (vfs storage, no bridge, no iptables) and the docker CLI pointed at it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.sock = base / "docker.sock"
        self.host = f"unix://{self.sock}"
        self.config_dir = base / "cli"
        self.config_dir.mkdir()
        self.cli = docker_cli()
        self.env = {
            **base_env(),
            "DOCKER_BUILDKIT": "0",
            "DOCKER_CONFIG": str(self.config_dir),
            "DOCKER_HOST": self.host,
        }
        self.env.pop("DOCKER_CONTEXT", None)
        args = [
            require("dockerd"),
            "--iptables=false",
            "--bridge=none",
            "--storage-driver=vfs",
            f"--data-root={base / 'data'}",
            f"--exec-root={base / 'exec'}",
            f"--pidfile={base / 'docker.pid'}",
            f"--host={self.host}",
        ]
        self.daemon = Daemon("dockerd", args, base / "dockerd.log")
        self.log_title = self.daemon.log_title
        self.log_path = self.daemon.log_path

    def start(self) -> None:
        self.daemon.start()
        wait_until(self._ping, what="dockerd", daemon=self.daemon)
        self.run("version")

    def _ping(self) -> bool:
        if not self.sock.exists():
            return False
        try:
            transport = httpx.HTTPTransport(uds=str(self.sock))
            with httpx.Client(transport=transport, timeout=2, trust_env=False) as client:
                return client.get("http://docker/_ping").status_code == 200
        except httpx.HTTPError:
            return False

    def run(
        self, *args: str | os.PathLike[str], check: bool = True, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run `docker ARGS` against this daemon."""
        return run([self.cli, *args], check=check, env=self.env, timeout=timeout)

    def inspect(self, ref: str, template: str) -> str:
        return self.run("image", "inspect", "--format", template, ref).stdout.strip()

    def has_image(self, ref: str) -> bool:
        return self.run("image", "inspect", ref, check=False).returncode == 0

    def stop(self) -> None:
        self.daemon.stop(timeout=30)
        remove_tree(self.base)


# --------------------------------------------------------------------------------------------------------------------
# Registry server under test
# --------------------------------------------------------------------------------------------------------------------


def server_kind() -> str:
    kind = os.environ.get("E2E_SERVER", "") or "ours"
    if kind not in ("ours", "distribution"):
        pytest.fail(f"E2E_SERVER={kind!r}: expected unset, 'ours' or 'distribution'", pytrace=False)
    return kind


def write_registry_config(root: Path, port: int) -> Path:
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(data)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
        "database": {"url": f"sqlite+aiosqlite:///{data / 'registry.db'}"},
    }
    path = root / "config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def needs_our_server(what: str) -> pytest.MarkDecorator:
    """Mark a test of a feature distribution 2.8.2 lacks: skipped only under E2E_SERVER=distribution."""
    return pytest.mark.skipif(os.environ.get("E2E_SERVER") == "distribution", reason=f"{DISTRIBUTION_GAPS}: {what}")


def registry_command(kind: str, config: Path) -> list[str]:
    if kind == "distribution":
        return [require("docker-registry"), "serve", str(config)]
    return [sys.executable, "-m", "registry", "serve", str(config)]


class RegistryServer:
    """The registry under test, on a loopback port, with its data under `root`."""

    def __init__(self, root: Path, kind: str, *, cwd: Path = REPO_ROOT) -> None:
        self.kind = kind
        self.root = root
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.config = write_registry_config(root, self.port)
        self.log_path = root / "server.log"
        self.log_title = f"registry server ({kind})"
        self.cwd = cwd
        self.daemon: Daemon | None = None

    def start(self) -> None:
        self.daemon = Daemon(self.log_title, registry_command(self.kind, self.config), self.log_path, cwd=self.cwd)
        self.daemon.start()
        wait_until(self._ready, what=f"{self.log_title} on {self.url}", daemon=self.daemon)

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/v2/", timeout=2, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

    def restart(self) -> None:
        """Stop with SIGTERM and start again on the same port and data."""
        self.stop()
        self.start()

    def client(self) -> RegistryClient:
        return RegistryClient(self.url)


# --------------------------------------------------------------------------------------------------------------------
# Images: the busybox rootfs and the three-layer test image
# --------------------------------------------------------------------------------------------------------------------

BUSYBOX_APPLETS = ("sh", "sha256sum", "cat", "echo", "ls", "env", "id", "pwd", "uname")
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1000:\n"


def is_static_elf(path: Path) -> bool:
    """True when the ELF file has no program interpreter (PT_INTERP), i.e. runs in an empty rootfs."""
    with path.open("rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF":
            return False
        endian = "<" if header[5] == 1 else ">"
        if header[4] == 2:  # 64-bit
            phoff, phentsize, phnum = struct.unpack(endian + "32xQ14xHH", header[:58])
        else:
            phoff, phentsize, phnum = struct.unpack(endian + "28xI10xHH", header[:46])
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            (p_type,) = struct.unpack(endian + "I", f.read(4))
            if p_type == 3:
                return False
    return True


def build_busybox_rootfs(dest: Path, busybox: Path) -> Path:
    """/bin/busybox plus applet symlinks, and /etc/passwd with root and `app` (uid 1000)."""
    (dest / "bin").mkdir(parents=True)
    (dest / "etc").mkdir()
    (dest / "tmp").mkdir()
    (dest / "tmp").chmod(0o1777)
    shutil.copy2(busybox, dest / "bin" / "busybox")
    for applet in BUSYBOX_APPLETS:
        (dest / "bin" / applet).symlink_to("busybox")
    (dest / "etc" / "passwd").write_text(PASSWD)
    (dest / "etc" / "group").write_text(GROUP)
    return dest


@dataclass(frozen=True)
class AppImage:
    """A locally built image: `tag` in the daemon, its id, and the sha256 its CMD prints."""

    tag: str
    image_id: str
    blob_sha256: str


APP_DOCKERFILE = """\
FROM scratch
COPY rootfs/ /
COPY blob.bin /data/blob.bin
COPY hello.txt /etc/e2e-hello.txt
CMD ["/bin/sh", "-c", "sha256sum /data/blob.bin"]
"""


def build_app_image(
    docker: DockerDaemon, rootfs: Path, workdir: Path, tag: str, blob_size: int = 300 * 1024
) -> AppImage:
    """Build the 3-layer test image FROM scratch with the legacy builder.

    Layer 1 is the busybox rootfs (with a per-build id, so no two builds share a layer), layer 2 `/data/blob.bin`
    of random bytes, layer 3 a small text file.
    """
    context = workdir / f"ctx-{random_suffix()}"
    shutil.copytree(rootfs, context / "rootfs", symlinks=True)
    build_id = random_suffix()
    (context / "rootfs" / "etc" / "e2e-build-id").write_text(build_id + "\n")
    blob = os.urandom(blob_size)
    (context / "blob.bin").write_bytes(blob)
    (context / "hello.txt").write_text(f"hello from e2e build {build_id}\n")
    (context / "Dockerfile").write_text(APP_DOCKERFILE)
    docker.run("build", "--tag", tag, context)
    shutil.rmtree(context)
    return AppImage(tag=tag, image_id=docker.inspect(tag, "{{.Id}}"), blob_sha256=hashlib.sha256(blob).hexdigest())


PUSH_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64}) size: \d+")
LAYER_STATUS = re.compile(r"^([0-9a-f]{12}): (.+)$", re.MULTILINE)


def push_digest(output: str) -> str:
    match = PUSH_DIGEST.search(output)
    assert match, f"no 'digest: sha256:... size: N' line in push output:\n{output}"
    return match.group(1)


def layer_statuses(output: str) -> dict[str, str]:
    """Final status of each layer in `docker push`/`docker pull` output (short layer id -> status)."""
    return dict(LAYER_STATUS.findall(output))


def docker_push(docker: DockerDaemon, ref: str) -> tuple[str, str]:
    """`docker push ref`; returns (manifest digest, full output)."""
    out = docker.run("push", ref).stdout
    return push_digest(out), out


def docker_forget(docker: DockerDaemon, *refs: str) -> None:
    """Remove every given reference, so the next pull must really fetch the image."""
    docker.run("rmi", "--force", *refs)
    for ref in refs:
        assert not docker.has_image(ref), f"{ref} is still present after docker rmi"


# --------------------------------------------------------------------------------------------------------------------
# Tar layers and OCI documents built in Python
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data), **extra}


def canonical_json(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def tar_files(files: Mapping[str, bytes], *, rootfs: Path | None = None) -> bytes:
    """An uncompressed, reproducible tar of `rootfs` (if given) plus `files` (path -> content)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if rootfs is not None:
            for path in sorted(rootfs.rglob("*")):
                info = tar.gettarinfo(path, arcname=str(path.relative_to(rootfs)))
                _normalise(info)
                if info.isfile():
                    with path.open("rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size = len(content)
            info.mode = 0o644
            _normalise(info)
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _normalise(info: tarfile.TarInfo) -> None:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""


@dataclass
class OciImage:
    """A single-platform OCI image: gzip layers, a config and the manifest that names them."""

    layers: list[Blob]
    config: Blob
    manifest: Blob
    platform: dict[str, str] = field(default_factory=dict)

    def blobs(self) -> list[Blob]:
        return [*self.layers, self.config]


def make_oci_image(layer_tars: Sequence[bytes], *, arch: str = "amd64", cmd: Sequence[str] = ()) -> OciImage:
    layers = [Blob(OCI_LAYER_GZIP, gzip.compress(t, mtime=0)) for t in layer_tars]
    config_doc = {
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": list(cmd)} if cmd else {},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(t) for t in layer_tars]},
    }
    config = Blob(OCI_CONFIG, canonical_json(config_doc))
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    return OciImage(
        layers, config, Blob(OCI_MANIFEST, canonical_json(manifest_doc)), {"architecture": arch, "os": "linux"}
    )


def make_index(images: Sequence[OciImage]) -> Blob:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [image.manifest.descriptor(platform=image.platform) for image in images],
    }
    return Blob(OCI_INDEX, canonical_json(doc))


def make_artifact(subject: Blob, artifact_type: str, payload: bytes) -> tuple[list[Blob], Blob]:
    """An OCI 1.1 artifact manifest (empty config, one payload layer) whose `subject` is `subject`."""
    empty = Blob(OCI_EMPTY, b"{}")
    layer = Blob("application/octet-stream", payload)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": empty.descriptor(),
        "layers": [layer.descriptor()],
        "subject": subject.descriptor(),
    }
    return [empty, layer], Blob(OCI_MANIFEST, canonical_json(doc))


# --------------------------------------------------------------------------------------------------------------------
# Registry HTTP API
# --------------------------------------------------------------------------------------------------------------------

LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def next_link(response: httpx.Response) -> str | None:
    match = LINK_NEXT.search(response.headers.get("link", ""))
    return match.group(1) if match else None


def describe(response: httpx.Response) -> str:
    request = response.request
    return f"{request.method} {request.url} -> {response.status_code}\n{response.headers}\n{response.text[:2000]}"


def expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    assert response.status_code in statuses, f"expected HTTP {statuses}, got:\n{describe(response)}"
    return response


class RegistryClient:
    """Just enough of the distribution API to push and read images by hand."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30, trust_env=False)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def push_blob(self, repo: str, blob: Blob) -> None:
        """Upload with POST (start) + PUT ?digest= (finish) unless the registry already has it."""
        if self.http.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 200:
            return
        start = expect(self.http.post(f"/v2/{repo}/blobs/uploads/"), 202)
        location = httpx.URL(start.headers["location"]).copy_merge_params({"digest": blob.digest})
        done = self.http.put(str(location), content=blob.data, headers={"content-type": "application/octet-stream"})
        expect(done, 201)
        assert done.headers.get("docker-content-digest") in (None, blob.digest), describe(done)

    def put_manifest(self, repo: str, reference: str, manifest: Blob) -> httpx.Response:
        response = self.http.put(
            f"/v2/{repo}/manifests/{reference}", content=manifest.data, headers={"content-type": manifest.media_type}
        )
        expect(response, 201)
        assert response.headers.get("docker-content-digest") == manifest.digest, describe(response)
        return response

    def push_image(self, repo: str, image: OciImage, reference: str | None = None) -> None:
        for blob in image.blobs():
            self.push_blob(repo, blob)
        self.put_manifest(repo, reference or image.manifest.digest, image.manifest)

    def get_manifest(self, repo: str, reference: str) -> httpx.Response:
        return self.http.get(f"/v2/{repo}/manifests/{reference}", headers={"accept": MANIFEST_ACCEPT})

    def paginate(self, first: str, key: str) -> Iterator[list[str]]:
        """Yield each page's `key` list, following `Link: <...>; rel="next"` to the end."""
        url: str | None = first
        seen = set()
        while url is not None:
            assert url not in seen, f"pagination loops back to {url}"
            seen.add(url)
            response = expect(self.http.get(url), 200)
            yield list(response.json().get(key) or [])
            url = next_link(response)


# --------------------------------------------------------------------------------------------------------------------
# Other clients: skopeo, podman, containerd -- each isolated from the host's configuration and state
# --------------------------------------------------------------------------------------------------------------------


def isolated_containers_env(base: Path) -> dict[str, str]:
    """Environment for containers/image tools with private auth, registries.conf and containers.conf."""
    auth = base / "auth.json"
    auth.write_text('{"auths": {}}\n')
    registries = base / "registries.conf"
    registries.write_text("unqualified-search-registries = []\n")
    containers_conf = base / "containers.conf"
    containers_conf.write_text("")
    tmp = base / "tmp"
    tmp.mkdir(exist_ok=True)
    return {
        **base_env(),
        "REGISTRY_AUTH_FILE": str(auth),
        "CONTAINERS_REGISTRIES_CONF": str(registries),
        "CONTAINERS_CONF": str(containers_conf),
        "TMPDIR": str(tmp),
    }


class Skopeo:
    def __init__(self, base: Path, docker_host: str) -> None:
        self.base = base
        self.docker_host = docker_host  # skopeo 1.9 ignores DOCKER_HOST: pass --src-daemon-host too
        self.env = {**isolated_containers_env(base), "DOCKER_HOST": docker_host}
        registries_d = base / "registries.d"
        registries_d.mkdir()
        self.argv = [require("skopeo"), "--insecure-policy", "--registries.d", str(registries_d)]

    def run(self, *args: str | os.PathLike[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([*self.argv, *args], check=check, env=self.env)

    def inspect(self, ref: str, *extra: str) -> Any:
        return json.loads(self.run("inspect", "--tls-verify=false", *extra, ref).stdout)


class Podman:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.env = isolated_containers_env(base)
        storage_conf = base / "storage.conf"
        storage_conf.write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{base / "root"}"\nrunroot = "{base / "runroot"}"\n'
        )
        self.env["CONTAINERS_STORAGE_CONF"] = str(storage_conf)
        self.argv = [
            require("podman"),
            f"--root={base / 'root'}",
            f"--runroot={base / 'runroot'}",
            "--storage-driver=vfs",
            "--cgroup-manager=cgroupfs",
            "--events-backend=file",
            f"--tmpdir={base / 'libpod'}",
            f"--network-config-dir={base / 'networks'}",
        ]

    def run(self, *args: str | os.PathLike[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([*self.argv, *args], check=check, env=self.env)

    def inspect(self, ref: str, template: str) -> str:
        return self.run("image", "inspect", "--format", template, ref).stdout.strip()

    def cleanup(self) -> None:
        self.run("rmi", "--all", "--force", check=False)
        remove_tree(self.base)


CONTAINERD_CONFIG = """\
version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{base}/containerd.sock"

[ttrpc]
  address = "{base}/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{base}/opt"
"""


class Containerd:
    """A private containerd (own root, state and socket) and `ctr` in a private namespace on it."""

    namespace = "e2e"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.sock = base / "containerd.sock"
        config = base / "config.toml"
        config.write_text(CONTAINERD_CONFIG.format(base=base))
        self.daemon = Daemon("containerd", [require("containerd"), "--config", config], base / "containerd.log")
        self.log_title = self.daemon.log_title
        self.log_path = self.daemon.log_path
        self.argv = [require("ctr"), "--address", str(self.sock), "--namespace", self.namespace]
        # the native snapshotter works on any filesystem (no overlayfs inside whatever /tmp is)
        self.env = {**base_env(), "CONTAINERD_SNAPSHOTTER": "native"}

    def start(self) -> None:
        self.daemon.start()
        wait_until(self._ready, what="containerd", daemon=self.daemon)

    def _ready(self) -> bool:
        return self.sock.exists() and self.ctr("version", check=False).returncode == 0

    def ctr(self, *args: str | os.PathLike[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([*self.argv, *args], check=check, env=self.env)

    def images(self) -> dict[str, str]:
        """`ctr images ls`: reference -> manifest digest."""
        lines = self.ctr("images", "ls").stdout.splitlines()[1:]
        return {cols[0]: cols[2] for cols in (line.split() for line in lines) if len(cols) >= 3}

    def stop(self) -> None:
        if not self.daemon.exited():
            for task in self.ctr("tasks", "ls", "--quiet", check=False).stdout.split():
                self.ctr("tasks", "kill", "--signal", "SIGKILL", task, check=False)
                self.ctr("tasks", "delete", "--force", task, check=False)
        self.daemon.stop()
        remove_tree(self.base)
