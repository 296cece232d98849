"""The local store: every path the runtime writes comes from `Store`.

Nobody but the store's owner may enter it: ROOT and the directories below are 0700, and files holding a container's
configuration (its `-e` values among them) 0600. Layers keep what the image says (setuid bits, file capabilities,
1777 directories), so no other host user may reach them: docker's answer to CVE-2021-41091. A store made before
this is fixed the first time it is opened.

ROOT/                               /var/lib/runtime as root, $XDG_DATA_HOME/runtime otherwise, or --root
├── lock                            flock'd by every command that changes images.json or layers/
├── images.json                     {"images": {"<registry>/<repo>:<tag>": ImageRecord}}
├── blobs/sha256/<hex>              content-addressed manifests, configs and compressed layers
├── tmp/                            downloads and unpacks in progress (renamed into place when verified)
├── layers/<diff_id hex>/           one unpacked layer, overlayfs lower dir, shared by images and containers
├── containers/<id>/                config.json (the OCI bundle), container.json, state.json, log.json,
│                                   hosts, hostname, resolv.conf, upper/, work/, rootfs/ (the overlay)
└── runc/                           the OCI runtime's own state (--root of runc/crun)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ImageNotFound
from .fsroot import remove_tree

SYSTEM_ROOT = Path("/var/lib/runtime")


def default_root() -> Path:
    env = os.environ.get("RUNTIME_ROOT")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return SYSTEM_ROOT
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(data) / "runtime"


def hex_of(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    if algorithm != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise ValueError(f"unsupported digest {digest!r}")
    return hexpart


PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
CONTAINER_FILES = ("config.json", "container.json", "state.json")


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` atomically with a file of mode 0600."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), PRIVATE_FILE)
        f.write(data)
    os.replace(tmp, path)


def write_json_atomic(path: Path, doc: Any) -> None:
    write_private(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())


@dataclass
class ImageRecord:
    """What a name:tag points at: the manifest, its config, and the layers' diff_ids bottom to top."""

    manifest: str
    manifest_media_type: str
    config: str
    layers: list[str]
    diff_ids: list[str]
    size: int
    created: str = ""
    source: str = ""  # the registry/repository it was pulled from, for cross-repository mounts on push
    extra: dict[str, Any] = field(default_factory=dict)


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.blobs = self.root / "blobs" / "sha256"
        self.tmp = self.root / "tmp"
        self.layers = self.root / "layers"
        self.containers = self.root / "containers"
        self.runc_root = self.root / "runc"
        self.images_file = self.root / "images.json"
        self.root.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        if stat.S_IMODE(self.root.stat().st_mode) != PRIVATE_DIR:
            self._make_private()
        for path in (self.root / "blobs", self.blobs, self.tmp, self.layers, self.containers):
            path.mkdir(exist_ok=True, mode=PRIVATE_DIR)

    def _make_private(self) -> None:
        """A new store, or one made when the store was open to all (0711 root, 0755 below): close it."""
        for path in (
            self.root,
            self.root / "blobs",
            self.blobs,
            self.tmp,
            self.layers,
            self.containers,
            self.runc_root,
        ):
            with contextlib.suppress(FileNotFoundError):
                path.chmod(PRIVATE_DIR)
        for name in CONTAINER_FILES:
            for path in self.containers.glob(f"*/{name}"):
                path.chmod(PRIVATE_FILE)

    # ---- locking -------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # ---- blobs ---------------------------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs / hex_of(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def read_blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def temp_file(self, prefix: str) -> tuple[int, Path]:
        fd, name = tempfile.mkstemp(prefix=prefix, dir=self.tmp)
        return fd, Path(name)

    def temp_dir(self, prefix: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.tmp))

    def commit_blob(self, tmp: Path, digest: str) -> Path:
        """Move a verified temporary file into place (the caller checked digest and size)."""
        dest = self.blob_path(digest)
        os.replace(tmp, dest)
        return dest

    def put_blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.has_blob(digest):
            fd, tmp = self.temp_file("blob-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self.commit_blob(tmp, digest)
        return digest

    # ---- layers --------------------------------------------------------------------------------------------------

    def layer_dir(self, diff_id: str) -> Path:
        return self.layers / hex_of(diff_id)

    def has_layer(self, diff_id: str) -> bool:
        return self.layer_dir(diff_id).is_dir()

    def commit_layer(self, tmp: Path, diff_id: str) -> None:
        """Rename an unpacked layer into place; if another pull got there first, keep theirs."""
        try:
            os.rename(tmp, self.layer_dir(diff_id))
        except OSError:
            if not self.has_layer(diff_id):
                raise
            remove_tree(tmp)

    # ---- images --------------------------------------------------------------------------------------------------

    def images(self) -> dict[str, ImageRecord]:
        try:
            doc = json.loads(self.images_file.read_text())
        except FileNotFoundError:
            return {}
        return {name: ImageRecord(**rec) for name, rec in doc.get("images", {}).items()}

    def save_images(self, images: dict[str, ImageRecord]) -> None:
        write_json_atomic(self.images_file, {"images": {name: asdict(rec) for name, rec in sorted(images.items())}})

    def image(self, name: str) -> ImageRecord:
        found = self.images().get(name)
        if found is None:
            raise ImageNotFound(f"no such image: {name} (runtime pull {name}, or runtime images to list them)")
        return found

    def config_doc(self, record: ImageRecord) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.read_blob(record.config))
        return doc

    # ---- containers ----------------------------------------------------------------------------------------------

    def container_dir(self, container_id: str) -> Path:
        return self.containers / container_id

    def container_ids(self) -> list[str]:
        return sorted(p.name for p in self.containers.iterdir() if (p / "container.json").is_file())
