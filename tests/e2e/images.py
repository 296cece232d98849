"""Images: the busybox rootfs and the three-layer test image built by docker, and OCI documents built in Python."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .daemons import DockerDaemon
from .procs import random_suffix

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_ACCEPT = ", ".join(
    [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, "application/vnd.docker.distribution.manifest.list.v2+json"]
)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------------------------------
# The busybox rootfs and the three-layer test image
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
