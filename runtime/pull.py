"""`runtime pull`: resolve a reference to this machine's manifest, fetch config and layers, unpack each layer once."""

from __future__ import annotations

import json
import os
import platform
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .client import Manifest, RegistryClient, remove_quietly
from .config import Settings
from .errors import DigestMismatch, RegistryError, UnpackError
from .fsroot import remove_tree_quietly
from .mediatypes import INDEXES
from .progress import Bars, Event, Report, Transfer, short
from .reference import Reference
from .store import ImageRecord, Store
from .tarstream import Limits
from .unpack import Budget, inherit_parents, unpack_blob

PARALLEL_LAYERS = 4
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "i686": "386"}


def this_platform() -> tuple[str, str, str]:
    machine = platform.machine()
    variant = {"aarch64": "v8", "armv7l": "v7", "armv6l": "v6"}.get(machine, "")
    return "linux", ARCHITECTURES.get(machine, machine), variant


def choose_platform(index: dict[str, Any]) -> str:
    """The digest of the index entry for this machine (variant preferred when the index names one)."""
    os_name, arch, variant = this_platform()
    candidates = [
        m
        for m in index.get("manifests") or []
        if (m.get("platform") or {}).get("os") == os_name and (m.get("platform") or {}).get("architecture") == arch
    ]
    candidates.sort(key=lambda m: (m.get("platform") or {}).get("variant", "") != variant)
    if not candidates:
        listed = ", ".join(
            f"{(m.get('platform') or {}).get('os')}/{(m.get('platform') or {}).get('architecture')}"
            for m in index.get("manifests") or []
        )
        raise RegistryError(f"the image has no {os_name}/{arch} manifest (it has: {listed or 'none'})")
    digest: str = candidates[0]["digest"]
    return digest


@dataclass
class Layer:
    digest: str
    size: int
    diff_id: str


def client_for(settings: Settings, registry: str, endpoint: str) -> RegistryClient:
    return RegistryClient(
        endpoint,
        credentials=settings.credentials(registry),
        insecure=registry in settings.insecure_registries or endpoint in settings.insecure_registries,
    )


def pull(
    store: Store, settings: Settings, ref: Reference, *, quiet: bool = False, report: Report | None = None
) -> ImageRecord:
    """Pull `ref` into the store; progress goes to `report`, or to the terminal's bars (none when quiet)."""
    if report is None:
        with Bars(quiet) as bars:
            return pull(store, settings, ref, report=bars)
    with client_for(settings, ref.registry, ref.endpoint) as client:
        manifest = resolve(client, ref)
        doc = json.loads(manifest.data)
        config_desc = doc.get("config") or {}
        layers_desc = doc.get("layers") or []
        config_data = fetch_small(client, store, ref.repository, config_desc["digest"], int(config_desc["size"]))
        config = json.loads(config_data)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(layers_desc):
            raise RegistryError(f"{ref}: the config lists {len(diff_ids)} diff_ids for {len(layers_desc)} layers")
        layers = [Layer(d["digest"], int(d["size"]), diff_id) for d, diff_id in zip(layers_desc, diff_ids, strict=True)]
        report(Event(f"Pulling from {ref.repository}", ref.tag or ref.reference, about="image"))
        announce(store, layers, report)
        unpacking = Unpacking.of(settings.unpack)
        with ThreadPoolExecutor(PARALLEL_LAYERS) as pool:
            jobs = [
                pool.submit(fetch_layer, client, store, ref.repository, layer, report, unpacking) for layer in layers
            ]
            results = gather(jobs)
    record = ImageRecord(
        manifest=manifest.digest,
        manifest_media_type=manifest.media_type or doc.get("mediaType") or "",
        config=config_desc["digest"],
        layers=[layer.digest for layer in layers],
        diff_ids=diff_ids,
        size=sum(layer.size for layer in layers),
        created=str(config.get("created") or datetime.now(UTC).isoformat()),
        source=ref.name,
    )
    with store.locked():
        commit_layers(store, diff_ids, results)
        store.put_blob(manifest.data)
        images = store.images()
        before = images.get(str(ref))
        images[str(ref)] = record
        store.save_images(images)
    for layer, fresh in zip(layers, results, strict=True):
        if fresh is not None:
            report(Event("Pull complete", short(layer.digest)))
    report(Event(f"Digest: {manifest.digest}"))
    news = (
        "Image is up to date" if before is not None and before.manifest == record.manifest else "Downloaded newer image"
    )
    report(Event(f"Status: {news} for {ref}"))
    return record


def announce(store: Store, layers: list[Layer], report: Report) -> None:
    """Each layer: `Already exists`, or `Pulling fs layer` (and `Waiting` when the pool has no thread for it yet)."""
    fresh = 0
    for layer in layers:
        if store.has_layer(layer.diff_id):
            report(Event("Already exists", short(layer.digest)))
            continue
        report(Event("Pulling fs layer", short(layer.digest)))
        if fresh >= PARALLEL_LAYERS:
            report(Event("Waiting", short(layer.digest)))
        fresh += 1


def gather(jobs: list[Future[Unpacked | None]]) -> list[Unpacked | None]:
    """Every job's result; when one fails, the others' temporary directories are removed before raising."""
    wait(jobs)
    failed = next((job.exception() for job in jobs if job.exception() is not None), None)
    if failed is None:
        return [job.result() for job in jobs]
    for job in jobs:
        done = job.result() if job.exception() is None else None
        if done is not None:
            remove_tree_quietly(done.path)
    raise failed


def resolve(client: RegistryClient, ref: Reference) -> Manifest:
    manifest = client.get_manifest(ref.repository, ref.reference)
    doc = json.loads(manifest.data)
    if manifest.media_type in INDEXES or ("manifests" in doc and "layers" not in doc):
        manifest = client.get_manifest(ref.repository, choose_platform(doc))
        doc = json.loads(manifest.data)
    if doc.get("schemaVersion") != 2 or "config" not in doc:
        raise RegistryError(f"{ref}: unsupported manifest ({manifest.media_type or 'no media type'})")
    return manifest


def fetch_small(client: RegistryClient, store: Store, repository: str, digest: str, size: int) -> bytes:
    if not store.has_blob(digest):
        fd, tmp = store.temp_file("config-")
        os.close(fd)
        try:
            client.fetch_blob(repository, digest, size, tmp)
            store.commit_blob(tmp, digest)
        finally:
            remove_quietly(tmp)
    return store.read_blob(digest)


@dataclass
class Unpacking:
    """The bounds of one pull: each layer's, and the budget its layers share."""

    limits: Limits
    budget: Budget

    @classmethod
    def of(cls, limits: Limits) -> Unpacking:
        return cls(limits, Budget(limits.image))


def fetch_layer(
    client: RegistryClient, store: Store, repository: str, layer: Layer, report: Report, unpacking: Unpacking
) -> Unpacked | None:
    """Download (unless stored) and unpack (unless unpacked) one layer into a temporary directory."""
    if store.has_layer(layer.diff_id):
        return None
    layer_id = short(layer.digest)
    if not store.has_blob(layer.digest):
        fd, tmp = store.temp_file("layer-")
        os.close(fd)
        try:
            transfer = Transfer(report, "Downloading", layer_id, layer.size)
            client.fetch_blob(repository, layer.digest, layer.size, tmp, transfer.advance)
            report(Event("Verifying Checksum", layer_id))
            store.commit_blob(tmp, layer.digest)
        finally:
            remove_quietly(tmp)
    report(Event("Download complete", layer_id))
    report(Event("Extracting", layer_id))
    return unpack_to_temp(store, layer.digest, layer.diff_id, unpacking)


@dataclass
class Unpacked:
    path: Path
    implicit_dirs: set[tuple[str, ...]]


def unpack_to_temp(store: Store, digest: str, diff_id: str, unpacking: Unpacking | None = None) -> Unpacked:
    """Unpack a stored layer blob into a temporary directory, checking the uncompressed bytes hash to `diff_id`."""
    unpacking = unpacking or Unpacking.of(Limits())
    tmp = store.temp_dir("unpack-")
    tmp.chmod(0o755)  # the layer's own "./" entry, when it has one, sets the mode of /
    try:
        got, stats = unpack_blob(store.blob_path(digest), tmp, unpacking.limits, unpacking.budget)
        if got != diff_id:
            raise DigestMismatch(f"layer {digest} unpacks to {got}, but the config says {diff_id}")
    except UnpackError as exc:
        remove_tree_quietly(tmp)
        raise UnpackError(f"layer {digest}: {exc}") from exc
    except BaseException:
        remove_tree_quietly(tmp)
        raise
    return Unpacked(tmp, stats.implicit_dirs)


def commit_layers(store: Store, diff_ids: list[str], unpacked: list[Unpacked | None]) -> None:
    """Bottom to top: implicit parent directories inherit from the layers below, then each is renamed into place."""
    try:
        below: list[Path] = []
        for diff_id, fresh in zip(diff_ids, unpacked, strict=True):
            if fresh is not None:
                inherit_parents(fresh.path, fresh.implicit_dirs, below)
                store.commit_layer(fresh.path, diff_id)
            below.insert(0, store.layer_dir(diff_id))
    finally:
        for fresh in unpacked:
            if fresh is not None:
                remove_tree_quietly(fresh.path)


def unpack_layer(store: Store, digest: str, diff_id: str, limits: Limits | None = None) -> None:
    if not store.has_layer(diff_id):
        unpacked = unpack_to_temp(store, digest, diff_id, Unpacking.of(limits or Limits()))
        commit_layers(store, [diff_id], [unpacked])
