"""What a manifest page shows beyond its rows: the image config (a blob, read only under a size cap), the platforms
of an index, and referrers by artifact type."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from registry.content.blobs import BlobStore
from registry.digests import Digest
from registry.errors import RegistryError
from registry.manifests import Descriptor, ParsedManifest, parse_manifest

CONFIG_MAX_BYTES = 1024 * 1024
IMAGE_CONFIG_TYPES = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)


@dataclass(frozen=True)
class ImageConfig:
    platform: str
    created: str
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    workdir: str = ""
    user: str = ""


def platform_text(platform: dict[str, Any] | None) -> str:
    if not platform:
        return ""
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    return "/".join(str(part) for part in parts if part)


def parsed(payload: bytes, media_type: str) -> ParsedManifest | None:
    try:
        return parse_manifest(payload, media_type)
    except RegistryError:  # schema 1, or something the push accepted that this parser does not read
        return None


def artifact_type(manifest: ParsedManifest | None) -> str | None:
    """An artifact's type (its ``artifactType``, or its config's media type when that is no image config)."""
    found = manifest.artifact_type if manifest is not None else None
    return None if found in IMAGE_CONFIG_TYPES else found


def index_platforms(payload: bytes | None, media_type: str) -> list[str]:
    """The platforms an index's children are for (attestations, ``unknown/unknown``, left out)."""
    manifest = parsed(payload, media_type) if payload is not None else None
    if manifest is None:
        return []
    shown = (platform_text(child.platform) for child in manifest.manifests)
    return list(dict.fromkeys(text for text in shown if text and not text.startswith("unknown")))


async def image_config(blobs: BlobStore, repo: str, descriptor: Descriptor) -> ImageConfig | str:
    """The config an image manifest names, or why it is not shown."""
    if descriptor.media_type not in IMAGE_CONFIG_TYPES:
        return ""
    if descriptor.size > CONFIG_MAX_BYTES:
        return f"The config is {descriptor.size} bytes, more than this page shows."
    digest = Digest.parse(descriptor.digest)
    try:
        if await blobs.size(repo, digest) > CONFIG_MAX_BYTES:
            return "The config is larger than this page shows."
        doc = json.loads(await blobs.read_small(digest))
    except RegistryError:
        return "The config blob is not in this repository."
    except (ValueError, UnicodeDecodeError):
        return "The config is not JSON."
    return _config(doc) if isinstance(doc, dict) else "The config is not a JSON object."


def _strings(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def _config(doc: dict[str, Any]) -> ImageConfig:
    inner = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    assert isinstance(inner, dict)
    labels = inner.get("Labels") if isinstance(inner.get("Labels"), dict) else {}
    assert isinstance(labels, dict)
    history = [item for item in doc.get("history") or [] if isinstance(item, dict)]
    return ImageConfig(
        platform=platform_text({key: doc.get(key) for key in ("os", "architecture", "variant")}),
        created=str(doc.get("created") or ""),
        entrypoint=_strings(inner.get("Entrypoint")),
        cmd=_strings(inner.get("Cmd")),
        env=_strings(inner.get("Env")),
        labels={str(key): str(value) for key, value in labels.items()},
        history=history,
        workdir=str(inner.get("WorkingDir") or ""),
        user=str(inner.get("User") or ""),
    )


def by_artifact_type(rows: Iterable[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.artifact_type or "(no artifact type)", []).append(row)
    return dict(sorted(grouped.items()))
