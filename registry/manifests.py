"""Parse and validate pushed manifests (pure: no I/O).

Decisions where the specs leave room (image-spec v1.1 manifest.md, image-index.md, descriptor.md;
distribution-spec spec.md "Pushing Manifests"; advisory GHSA-mc8v-mgrf-8f4m):

- The digest is taken over the exact bytes; they are never re-serialised.
- The body's ``mediaType`` wins. A Content-Type naming a manifest type must agree with it; a Content-Type that names
  no manifest type at all (``application/json``, curl's form default) says nothing and is ignored, so the body decides.
- A document that could be read both as a manifest and as an index is refused, whatever its media type.
- A malformed descriptor digest answers DIGEST_INVALID, as distribution does (the spec's code table: "MAY also be
  returned when a manifest includes an invalid layer digest"); every other violation answers MANIFEST_INVALID.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from registry.digests import Digest
from registry.errors import ErrorCode, RegistryError

MANIFEST_MAX_SIZE = 4 * 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
SUPPORTED_TYPES = INDEX_TYPES | MANIFEST_TYPES
KNOWN_TYPES = SUPPORTED_TYPES | SCHEMA1_TYPES

# The variant a platform without one means (containerd's platform normalisation).
DEFAULT_VARIANTS = {"arm64": "v8", "arm": "v7", "amd64": "v1"}

# RFC 6838 section 4.2 restricted-name "/" restricted-name, as descriptor.md requires of media types.
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
MEDIA_TYPE_RE = re.compile(f"{_RESTRICTED_NAME}/{_RESTRICTED_NAME}")
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type is not None:
            out["artifactType"] = self.artifact_type
        if self.annotations is not None:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = dict(self.platform)
        return out


@dataclass(frozen=True)
class ParsedManifest:
    media_type: str
    digest: str
    size: int
    artifact_type: str | None
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    manifests: tuple[Descriptor, ...]
    subject: Descriptor | None
    annotations: dict[str, str] | None

    @property
    def blob_references(self) -> tuple[Descriptor, ...]:
        return self.layers if self.config is None else (self.config, *self.layers)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def descriptor(self) -> Descriptor:
        """This manifest as a referrers-list entry (distribution-spec "Listing Referrers")."""
        return Descriptor(self.media_type, self.digest, self.size, None, self.artifact_type, self.annotations)


_Parts = tuple[Descriptor | None, tuple[Descriptor, ...], tuple[Descriptor, ...]]  # config, layers, manifests


def _invalid(reason: str, field: str | None = None, **extra: Any) -> RegistryError:
    detail: dict[str, Any] = {"reason": reason}
    if field is not None:
        detail["field"] = field
    detail.update(extra)
    return ErrorCode.MANIFEST_INVALID.error(detail)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate object key")
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
        doc = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _invalid(f"not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise _invalid("manifest must be a JSON object")
    return doc


def _check_schema_version(doc: dict[str, Any]) -> None:
    version = doc.get("schemaVersion")
    if type(version) is int and version == 1:
        raise _invalid("schema1 manifests are not supported", "schemaVersion")
    if type(version) is not int or version != 2:
        raise _invalid("schemaVersion must be the integer 2", "schemaVersion")


def _check_unambiguous(doc: dict[str, Any]) -> None:
    if "manifests" in doc and ("config" in doc or "layers" in doc):
        raise _invalid("ambiguous document: both manifests and config/layers", "manifests")


def _header_media_type(content_type: str | None) -> str | None:
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return mime if mime in KNOWN_TYPES else None


def _infer_media_type(doc: dict[str, Any]) -> str:
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc:
        return OCI_MANIFEST
    raise _invalid("no mediaType or Content-Type, and neither manifests nor config to infer one from", "mediaType")


def _effective_media_type(doc: dict[str, Any], content_type: str | None) -> str:
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string", "mediaType")
    header = _header_media_type(content_type)
    if declared and header and declared != header:
        raise _invalid("mediaType does not match Content-Type", "mediaType", mediaType=declared, contentType=header)
    media_type = declared or header or _infer_media_type(doc)
    if media_type in SCHEMA1_TYPES:
        raise _invalid("schema1 manifests are not supported", "mediaType", mediaType=media_type)
    if media_type not in SUPPORTED_TYPES:
        raise _invalid("unsupported manifest media type", "mediaType", mediaType=media_type)
    return media_type


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid("must be a JSON object", field)
    return value


def _media_type(value: Any, field: str) -> str:
    if not isinstance(value, str) or not MEDIA_TYPE_RE.fullmatch(value):
        raise _invalid("must be a media type (RFC 6838 type/subtype)", field)
    return value


def _optional_media_type(value: Any, field: str) -> str | None:
    return None if value is None or value == "" else _media_type(value, field)


def _digest(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise _invalid("digest must be a string", field)
    try:
        Digest.parse(value)
    except RegistryError as err:
        detail = err.detail if isinstance(err.detail, dict) else {"reason": str(err.detail)}
        raise ErrorCode.DIGEST_INVALID.error({**detail, "field": field}) from err
    return value


def _size(value: Any, field: str) -> int:
    if type(value) is not int or not 0 <= value <= _INT64_MAX:
        raise _invalid("size must be a non-negative integer", field)
    return value


def _check_string(obj: dict[str, Any], key: str, field: str, *, required: bool = False) -> None:
    value = obj.get(key)
    if (value is not None or required) and not isinstance(value, str):
        raise _invalid("must be a string", f"{field}.{key}")


def _platform(value: Any, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    obj = _object(value, field)
    _check_string(obj, "os", field, required=True)
    _check_string(obj, "architecture", field, required=True)
    _check_string(obj, "variant", field)
    _check_string(obj, "os.version", field)
    return dict(obj)


def _annotations(value: Any, field: str) -> dict[str, str] | None:
    if value is None:
        return None
    obj = _object(value, field)
    for key, item in obj.items():
        if not isinstance(item, str):
            raise _invalid("annotation values must be strings", f"{field}.{key}")
    return dict(obj)


def parse_descriptor(value: Any, field: str) -> Descriptor:
    obj = _object(value, field)
    return Descriptor(
        media_type=_media_type(obj.get("mediaType"), f"{field}.mediaType"),
        digest=_digest(obj.get("digest"), f"{field}.digest"),
        size=_size(obj.get("size"), f"{field}.size"),
        platform=_platform(obj.get("platform"), f"{field}.platform"),
        artifact_type=_optional_media_type(obj.get("artifactType"), f"{field}.artifactType"),
        annotations=_annotations(obj.get("annotations"), f"{field}.annotations"),
    )


def _descriptor_list(doc: dict[str, Any], key: str) -> tuple[Descriptor, ...]:
    items = doc.get(key)
    if not isinstance(items, list):
        raise _invalid("must be an array of descriptors", key)
    return tuple(parse_descriptor(item, f"{key}[{i}]") for i, item in enumerate(items))


def _parts(doc: dict[str, Any], media_type: str) -> _Parts:
    if media_type in INDEX_TYPES:
        return None, (), _descriptor_list(doc, "manifests")
    if "manifests" in doc:
        raise _invalid("an image manifest has no manifests", "manifests")
    if "config" not in doc:
        raise _invalid("config descriptor is required", "config")
    return parse_descriptor(doc["config"], "config"), _descriptor_list(doc, "layers"), ()


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    if len(body) > MANIFEST_MAX_SIZE:
        detail = {"reason": "manifest too large", "size": len(body), "limit": MANIFEST_MAX_SIZE}
        raise ErrorCode.MANIFEST_INVALID.error(detail, status=413)
    doc = _decode(body)
    _check_schema_version(doc)
    _check_unambiguous(doc)
    media_type = _effective_media_type(doc, content_type)
    config, layers, manifests = _parts(doc, media_type)
    artifact_type = _optional_media_type(doc.get("artifactType"), "artifactType")
    subject = doc.get("subject")
    return ParsedManifest(
        media_type=media_type,
        digest=str(Digest.of(body)),
        size=len(body),
        artifact_type=artifact_type or (config.media_type if config is not None else None),
        config=config,
        layers=layers,
        manifests=manifests,
        subject=None if subject is None else parse_descriptor(subject, "subject"),
        annotations=_annotations(doc.get("annotations"), "annotations"),
    )


def _variant(architecture: str, variant: Any) -> str | None:
    return variant if isinstance(variant, str) and variant else DEFAULT_VARIANTS.get(architecture)


def _same_platform(descriptor: Descriptor, os: str, architecture: str) -> bool:
    platform = descriptor.platform or {}
    if platform.get("os") == "unknown":  # buildkit attestations: platform unknown/unknown
        return False
    return platform.get("os") == os and platform.get("architecture") == architecture


def select_platform(
    manifests: Sequence[Descriptor], os: str = "linux", architecture: str = "amd64", variant: str | None = None
) -> Descriptor | None:
    candidates = [d for d in manifests if _same_platform(d, os, architecture)]
    wanted = _variant(architecture, variant)
    for descriptor in candidates:  # image-index.md: "the first matching entry SHOULD be used"
        if _variant(architecture, (descriptor.platform or {}).get("variant")) == wanted:
            return descriptor
    if variant is None and candidates:
        return candidates[0]
    return None
