"""`runtime push`: blobs the registry lacks (mounted from the repository the image came from when it can), then
the manifest, byte for byte as stored."""

from __future__ import annotations

from .client import RegistryClient
from .config import Settings
from .progress import About, Event, Report, short
from .pull import client_for
from .reference import Reference
from .store import Store


def push(store: Store, settings: Settings, ref: Reference, report: Report) -> str:
    """Upload `ref`'s blobs and manifest; what happens to each blob goes to `report`, then the digest line."""
    record = store.image(str(ref))
    scopes: tuple[str, ...] = (f"repository:{ref.repository}:pull,push",)
    source_registry, _, source_repo = record.source.partition("/")
    mount_from = source_repo if source_registry == ref.registry and source_repo != ref.repository else None
    if mount_from:
        scopes = (*scopes, f"repository:{mount_from}:pull")
    report(Event(f"The push refers to repository [{ref.name}]"))
    blobs: list[tuple[str, About]] = [*((d, "layer") for d in record.layers), (record.config, "config")]
    for digest, about in blobs:
        report(Event("Preparing", short(digest), about=about))
    with client_for(settings, ref.registry, ref.endpoint) as client:
        for digest, about in blobs:
            status = upload_blob(client, store, ref.repository, digest, mount_from, scopes, report, about)
            report(Event(status, short(digest), about=about))
        data = store.read_blob(record.manifest)
        digest = client.put_manifest(ref.repository, ref.reference, data, record.manifest_media_type)
    tag = ref.tag or ref.reference
    report(Event(f"{tag}: digest: {digest} size: {len(data)}"))
    report(Event("", aux={"Tag": tag, "Digest": digest, "Size": len(data)}))
    remember_source(store, record.manifest, ref)
    return digest


def upload_blob(
    client: RegistryClient,
    store: Store,
    repository: str,
    digest: str,
    mount_from: str | None,
    scopes: tuple[str, ...],
    report: Report,
    about: About,
) -> str:
    """Make sure the registry has one blob: its final status, in docker's words."""
    if client.has_blob(repository, digest, scopes):
        return "Layer already exists"
    location = client.start_upload(repository, digest, mount_from, scopes)
    if location is None:
        return f"Mounted from {mount_from}"
    size = store.blob_path(digest).stat().st_size
    report(Event("Pushing", short(digest), 0, size, about=about))
    client.upload(location, store.blob_path(digest), digest, scopes)
    report(Event("Pushing", short(digest), size, size, about=about))
    return "Pushed"


def remember_source(store: Store, manifest: str, ref: Reference) -> None:
    """Images with this manifest and no known source now have one: the next push elsewhere can mount from it."""
    with store.locked():
        images = store.images()
        for record in images.values():
            if record.manifest == manifest and not record.source:
                record.source = ref.name
        store.save_images(images)
