"""Images in the local store: `import` a rootfs as a one-layer image, `tag`, `rmi`, and the collector behind it."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from . import containers
from .errors import ConflictError, ImageNotFound, UsageError
from .fsroot import remove_tree
from .mediatypes import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST
from .pull import this_platform, unpack_layer
from .reference import Reference, parse
from .spec import DEFAULT_PATH
from .store import ImageRecord, Store, hex_of
from .tarstream import Limits
from .unpack import CHUNK, decompressed


def file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            sha.update(chunk)
    return "sha256:" + sha.hexdigest()


def _tar_directory(source: Path, dest: Path) -> None:
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for child in sorted(os.listdir(source)):
            tar.add(source / child, arcname=child, recursive=True)  # lstat: symlinks are stored, not followed


def _copy_tarball(source: Path, dest: Path) -> None:
    with decompressed(source) as stream, dest.open("wb") as out:
        shutil.copyfileobj(stream, out, CHUNK)


def import_image(
    store: Store, source: Path, ref: Reference, *, cmd: list[str], env: list[str], limits: Limits | None = None
) -> ImageRecord:
    """A one-layer image from a directory or a tarball (plain, gzip or zstd), stored under `ref`."""
    if not source.exists():
        raise UsageError(f"{source} does not exist")
    tar_path = store.tmp / f"import-{os.getpid()}.tar"
    gz_path = store.tmp / f"import-{os.getpid()}.tar.gz"
    try:
        (_tar_directory if source.is_dir() else _copy_tarball)(source, tar_path)
        diff_id = file_digest(tar_path)
        with tar_path.open("rb") as raw, gzip.GzipFile(gz_path, "wb", compresslevel=6, mtime=0) as gz:
            shutil.copyfileobj(raw, gz, CHUNK)
        layer_digest = file_digest(gz_path)
        layer_size = gz_path.stat().st_size
        store.commit_blob(gz_path, layer_digest)
    finally:
        for path in (tar_path, gz_path):
            path.unlink(missing_ok=True)
    unpack_layer(store, layer_digest, diff_id, limits)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    os_name, arch, variant = this_platform()
    config_doc = {
        "created": created,
        "architecture": arch,
        "os": os_name,
        **({"variant": variant} if variant else {}),
        "config": {"Env": env or [f"PATH={DEFAULT_PATH}"], **({"Cmd": cmd} if cmd else {})},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": f"runtime import {source.name}"}],
    }
    config = json.dumps(config_doc, separators=(",", ":"), sort_keys=True).encode()
    config_digest = store.put_blob(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": layer_size}],
    }
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    record = ImageRecord(
        manifest=store.put_blob(manifest_bytes),
        manifest_media_type=OCI_MANIFEST,
        config=config_digest,
        layers=[layer_digest],
        diff_ids=[diff_id],
        size=layer_size,
        created=created,
    )
    with store.locked():
        images = store.images()
        images[str(ref)] = record
        store.save_images(images)
    return record


def find(store: Store, name: str) -> list[str]:
    """The stored names `name` means: a reference (`app`, `app:v1`, `app@sha256:...`), or an image ID (the config
    digest, `sha256:` optional, a prefix of 4 or more); every name of the image when it is an ID."""
    images = store.images()
    try:
        ref = parse(name)
    except UsageError:
        ref = None
    if ref is not None and str(ref) in images:
        return [str(ref)]
    if ref is not None and ref.digest:
        found = [n for n, r in images.items() if r.manifest == ref.digest and parse(n).name == ref.name]
        if found:
            return found[:1]
    wanted = name.removeprefix("sha256:")
    if 4 <= len(wanted) <= 64 and all(c in "0123456789abcdef" for c in wanted):
        configs = {r.config for r in images.values() if hex_of(r.config).startswith(wanted)}
        if len(configs) == 1:
            return [n for n, r in images.items() if r.config in configs]
    raise ImageNotFound(f"no such image: {name}")


def tag(store: Store, source: str, target: Reference) -> None:
    with store.locked():
        images = store.images()
        record = store.image(source)
        images[str(target)] = record
        store.save_images(images)


def remove_image(store: Store, name: str, *, force: bool = False) -> list[str]:
    """Untag `name`; when no tag is left on its manifest, delete what no image or container still uses."""
    with store.locked():
        images = store.images()
        record = store.image(name)
        others = [n for n, r in images.items() if r.manifest == record.manifest and n != name]
        users = [c for c in containers.all_containers(store) if c.manifest == record.manifest]
        if users and not others and not force:
            names = ", ".join(c.name for c in users)
            raise ConflictError(f"image {name} is used by container(s) {names}: runtime rm them first, or rmi -f")
        del images[name]
        store.save_images(images)
        return collect(store, images)


def collect(store: Store, images: dict[str, ImageRecord]) -> list[str]:
    """Delete layer directories and blobs that no image and no container refers to; their names."""
    keep_layers = {hex_of(d) for r in images.values() for d in r.diff_ids}
    keep_layers |= {hex_of(d) for c in containers.all_containers(store) for d in c.diff_ids}
    keep_blobs = {hex_of(d) for r in images.values() for d in (r.manifest, r.config, *r.layers)}
    removed = []
    for path in store.layers.iterdir():
        if path.name not in keep_layers and path.name != containers.EMPTY_LAYER:
            remove_tree(path)
            removed.append("layer sha256:" + path.name)
    for path in store.blobs.iterdir():
        if path.name not in keep_blobs:
            path.unlink()
            removed.append("blob sha256:" + path.name)
    return removed
