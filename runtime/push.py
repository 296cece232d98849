"""`runtime push`: blobs the registry lacks (mounted from the repository the image came from when it can), then
the manifest, byte for byte as stored."""

from __future__ import annotations

from collections.abc import Callable

from .config import Settings
from .pull import client_for
from .reference import Reference
from .store import Store


def push(store: Store, settings: Settings, ref: Reference, say: Callable[[str], None]) -> str:
    record = store.image(str(ref))
    scopes: tuple[str, ...] = (f"repository:{ref.repository}:pull,push",)
    source_registry, _, source_repo = record.source.partition("/")
    mount_from = source_repo if source_registry == ref.registry and source_repo != ref.repository else None
    if mount_from:
        scopes = (*scopes, f"repository:{mount_from}:pull")
    with client_for(settings, ref.registry, ref.endpoint) as client:
        for digest in [*record.layers, record.config]:
            short = digest.split(":")[1][:12]
            if client.has_blob(ref.repository, digest, scopes):
                say(f"{short}: Layer already exists")
                continue
            location = client.start_upload(ref.repository, digest, mount_from, scopes)
            if location is None:
                say(f"{short}: Mounted from {mount_from}")
                continue
            client.upload(location, store.blob_path(digest), digest, scopes)
            say(f"{short}: Pushed")
        data = store.read_blob(record.manifest)
        digest = client.put_manifest(ref.repository, ref.reference, data, record.manifest_media_type)
    say(f"{ref.tag or ref.reference}: digest: {digest} size: {len(data)}")
    remember_source(store, record.manifest, ref)
    return digest


def remember_source(store: Store, manifest: str, ref: Reference) -> None:
    """Images with this manifest and no known source now have one: the next push elsewhere can mount from it."""
    with store.locked():
        images = store.images()
        for record in images.values():
            if record.manifest == manifest and not record.source:
                record.source = ref.name
        store.save_images(images)
