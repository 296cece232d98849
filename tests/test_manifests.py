from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from registry.digests import Digest
from registry.errors import ErrorCode, RegistryError
from registry.manifests import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA1_SIGNED,
    MANIFEST_MAX_SIZE,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    parse_manifest,
    select_platform,
)

EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def digest_of(data: bytes) -> str:
    return str(Digest.of(data))


def desc(media_type: str, data: bytes = b"blob", **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def plat(os: str, architecture: str, variant: str | None = None) -> dict[str, str]:
    out = {"os": os, "architecture": architecture}
    return out if variant is None else {**out, "variant": variant}


def image(media_type: str | None = OCI_MANIFEST, **extra: Any) -> dict[str, Any]:
    config_type, layer_type = (
        (DOCKER_CONFIG, DOCKER_LAYER) if media_type == DOCKER_MANIFEST else (OCI_CONFIG, OCI_LAYER)
    )
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    doc.update(config=desc(config_type, b"config"), layers=[desc(layer_type, b"l1"), desc(layer_type, b"l2")])
    doc.update(extra)
    return {k: v for k, v in doc.items() if v is not None}


def index(media_type: str | None = OCI_INDEX, **extra: Any) -> dict[str, Any]:
    child = DOCKER_MANIFEST if media_type == DOCKER_MANIFEST_LIST else OCI_MANIFEST
    manifests = [
        desc(child, b"arm", platform=plat("linux", "arm64", "v8")),
        desc(child, b"amd", platform=plat("linux", "amd64")),
    ]
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests, **extra}
    return {k: v for k, v in doc.items() if v is not None}


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def expect_error(body: bytes, content_type: str | None, code: ErrorCode = ErrorCode.MANIFEST_INVALID) -> RegistryError:
    with pytest.raises(RegistryError) as info:
        parse_manifest(body, content_type)
    assert info.value.code is code, info.value.detail
    return info.value


# --- valid manifests ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "media_type", "is_index", "blobs", "children"),
    [
        (image(DOCKER_MANIFEST), DOCKER_MANIFEST, False, 3, 0),
        (index(DOCKER_MANIFEST_LIST), DOCKER_MANIFEST_LIST, True, 0, 2),
        (image(OCI_MANIFEST), OCI_MANIFEST, False, 3, 0),
        (index(OCI_INDEX), OCI_INDEX, True, 0, 2),
    ],
    ids=["docker-v2", "docker-list", "oci-manifest", "oci-index"],
)
def test_every_supported_media_type_parses(
    doc: dict[str, Any], media_type: str, is_index: bool, blobs: int, children: int
) -> None:
    parsed = parse_manifest(encode(doc), media_type)
    assert parsed.media_type == media_type
    assert parsed.is_index is is_index
    assert len(parsed.blob_references) == blobs
    assert len(parsed.manifests) == children
    assert (parsed.config is None) is is_index


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        OCI_MANIFEST,
        f"{OCI_MANIFEST}; charset=utf-8",
        "Application/VND.oci.image.manifest.v1+json",
        "application/json",
    ],
)
def test_content_type_agreeing_absent_or_generic_is_accepted(content_type: str | None) -> None:
    assert parse_manifest(encode(image()), content_type).media_type == OCI_MANIFEST


@pytest.mark.parametrize(
    ("doc", "content_type", "expected"),
    [
        (image(None), None, OCI_MANIFEST),
        (index(None), None, OCI_INDEX),
        (image(None), "application/octet-stream", OCI_MANIFEST),
        (image(None), DOCKER_MANIFEST, DOCKER_MANIFEST),
        (index(None), DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_LIST),
    ],
    ids=["infer-manifest", "infer-index", "generic-header-infers", "header-docker", "header-docker-list"],
)
def test_media_type_from_header_or_inferred(doc: dict[str, Any], content_type: str | None, expected: str) -> None:
    assert parse_manifest(encode(doc), content_type).media_type == expected


def test_layers_and_config_are_parsed_in_order() -> None:
    parsed = parse_manifest(encode(image()), OCI_MANIFEST)
    assert parsed.config == Descriptor(OCI_CONFIG, digest_of(b"config"), 6)
    assert [layer.digest for layer in parsed.layers] == [digest_of(b"l1"), digest_of(b"l2")]
    assert parsed.blob_references[0] == parsed.config


def test_artifact_with_empty_config_artifact_type_and_subject() -> None:
    empty = {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2}
    subject = desc(OCI_MANIFEST, b"subject")
    doc = image(
        artifactType="application/vnd.example.sbom.v1",
        config=empty,
        layers=[empty],
        subject=subject,
        annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    )
    parsed = parse_manifest(encode(doc), OCI_MANIFEST)
    assert hashlib.sha256(b"{}").hexdigest() == EMPTY_DIGEST.split(":")[1]
    assert parsed.artifact_type == "application/vnd.example.sbom.v1"
    assert parsed.config == Descriptor(OCI_EMPTY, EMPTY_DIGEST, 2)
    assert parsed.subject == Descriptor(OCI_MANIFEST, subject["digest"], subject["size"])
    assert parsed.annotations == {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
    referrer = parsed.descriptor().to_json()
    assert referrer["artifactType"] == "application/vnd.example.sbom.v1"
    assert referrer["annotations"] == parsed.annotations


def test_artifact_with_no_layers_is_accepted() -> None:
    assert parse_manifest(encode(image(layers=[])), OCI_MANIFEST).layers == ()


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (image(), OCI_CONFIG),
        (image(artifactType=""), OCI_CONFIG),
        (image(artifactType="application/vnd.example+type"), "application/vnd.example+type"),
        (index(), None),
        (index(artifactType="application/vnd.example.bundle"), "application/vnd.example.bundle"),
    ],
    ids=["config-fallback", "empty-falls-back", "manifest-explicit", "index-none", "index-explicit"],
)
def test_artifact_type_as_referrers_api_reports_it(doc: dict[str, Any], expected: str | None) -> None:
    assert parse_manifest(encode(doc), None).artifact_type == expected


def test_index_with_subject_and_child_platforms() -> None:
    parsed = parse_manifest(encode(index(subject=desc(OCI_MANIFEST, b"s"))), OCI_INDEX)
    assert parsed.subject is not None and parsed.subject.digest == digest_of(b"s")
    assert parsed.manifests[0].platform == plat("linux", "arm64", "v8")


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": "), (",\n", " :  ")])
def test_digest_is_sha256_of_exact_bytes(separators: tuple[str, str]) -> None:
    body = ("\n  " + json.dumps(image(), indent=3, separators=separators) + "\n\n").encode()
    parsed = parse_manifest(body, OCI_MANIFEST)
    assert parsed.digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert parsed.size == len(body)


def test_whitespace_changes_the_digest() -> None:
    compact = json.dumps(image(), separators=(",", ":")).encode()
    spaced = json.dumps(image(), indent=2).encode()
    assert parse_manifest(compact, None).digest != parse_manifest(spaced, None).digest


def test_descriptor_to_json() -> None:
    descriptor = Descriptor(OCI_MANIFEST, EMPTY_DIGEST, 2, plat("linux", "amd64"), "application/x.t", {"a": "b"})
    assert descriptor.to_json() == {
        "mediaType": OCI_MANIFEST,
        "digest": EMPTY_DIGEST,
        "size": 2,
        "artifactType": "application/x.t",
        "annotations": {"a": "b"},
        "platform": {"os": "linux", "architecture": "amd64"},
    }
    assert Descriptor(OCI_EMPTY, EMPTY_DIGEST, 2).to_json() == {
        "mediaType": OCI_EMPTY,
        "digest": EMPTY_DIGEST,
        "size": 2,
    }


def test_body_at_the_size_limit_is_accepted() -> None:
    body = encode(image())
    body += b" " * (MANIFEST_MAX_SIZE - len(body))
    assert parse_manifest(body, OCI_MANIFEST).size == MANIFEST_MAX_SIZE


# --- invalid manifests -------------------------------------------------------------------------------------------


def test_too_large_is_413() -> None:
    body = encode(image())
    body += b" " * (MANIFEST_MAX_SIZE + 1 - len(body))
    err = expect_error(body, OCI_MANIFEST, ErrorCode.MANIFEST_INVALID)
    assert err.status == 413


def with_layer(**fields: Any) -> dict[str, Any]:
    layer = {k: v for k, v in {**desc(OCI_LAYER), **fields}.items() if v is not None}
    return image(layers=[layer])


INVALID_BODIES: dict[str, tuple[bytes, str | None]] = {
    "not-json": (b"{not json", OCI_MANIFEST),
    "empty-body": (b"", OCI_MANIFEST),
    "not-utf8": (b'{"schemaVersion": 2, "x": "\xff"}', OCI_MANIFEST),
    "utf8-bom": (b"\xef\xbb\xbf" + encode(image()), OCI_MANIFEST),
    "array": (encode([image()]), OCI_MANIFEST),
    "string": (encode("manifest"), OCI_MANIFEST),
    "nan": (encode(image()).replace(b'"schemaVersion": 2', b'"schemaVersion": 2, "x": NaN'), OCI_MANIFEST),
    "duplicate-key": (encode(image()).replace(b'"schemaVersion": 2', b'"schemaVersion": 2, "schemaVersion": 2'), None),
    "deeply-nested": (b'{"schemaVersion": 2, "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", OCI_MANIFEST),
    "schema-missing": (encode({k: v for k, v in image().items() if k != "schemaVersion"}), OCI_MANIFEST),
    "schema-string": (encode(image(schemaVersion="2")), OCI_MANIFEST),
    "schema-float": (encode(image(schemaVersion=2.0)), OCI_MANIFEST),
    "schema-bool": (encode(image(schemaVersion=True)), OCI_MANIFEST),
    "schema-3": (encode(image(schemaVersion=3)), OCI_MANIFEST),
    "schema1": (encode({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}), DOCKER_SCHEMA1_SIGNED),
    "schema1-content-type": (encode(image(None)), DOCKER_SCHEMA1_SIGNED),
    "mismatch-header": (encode(image(OCI_MANIFEST)), DOCKER_MANIFEST),
    "mismatch-index-header": (encode(index(OCI_INDEX)), OCI_MANIFEST),
    "media-type-not-string": (encode(image(mediaType=5)), None),
    "unsupported-media-type": (encode(image("application/vnd.oci.artifact.manifest.v1+json")), None),
    "unsupported-wins-over-generic-header": (encode(image("application/x-custom")), "application/json"),
    "uninferable": (encode({"schemaVersion": 2, "blobs": []}), None),
    "uninferable-generic-header": (encode({"schemaVersion": 2, "blobs": []}), "application/json"),
    "ambiguous-manifest": (encode(image(manifests=[])), OCI_MANIFEST),
    "ambiguous-index": (encode(index(layers=[])), OCI_INDEX),
    "config-missing": (encode({k: v for k, v in image().items() if k != "config"}), OCI_MANIFEST),
    "config-not-object": (encode(image(config="sha256:abc")), OCI_MANIFEST),
    "config-is-index-shaped": (encode(index(OCI_MANIFEST)), OCI_MANIFEST),
    "layers-missing": (encode({k: v for k, v in image().items() if k != "layers"}), OCI_MANIFEST),
    "layers-not-list": (encode(image(layers={"0": desc(OCI_LAYER)})), OCI_MANIFEST),
    "layer-not-object": (encode(image(layers=["sha256:abc"])), OCI_MANIFEST),
    "layer-no-media-type": (encode(with_layer(mediaType=None)), OCI_MANIFEST),
    "layer-media-type-number": (encode(with_layer(mediaType=3)), OCI_MANIFEST),
    "layer-media-type-malformed": (encode(with_layer(mediaType="not a media type")), OCI_MANIFEST),
    "layer-no-digest": (encode(with_layer(digest=None)), OCI_MANIFEST),
    "layer-digest-number": (encode(with_layer(digest=123)), OCI_MANIFEST),
    "layer-no-size": (encode(with_layer(size=None)), OCI_MANIFEST),
    "layer-size-negative": (encode(with_layer(size=-1)), OCI_MANIFEST),
    "layer-size-float": (encode(with_layer(size=4.0)), OCI_MANIFEST),
    "layer-size-bool": (encode(with_layer(size=True)), OCI_MANIFEST),
    "layer-size-string": (encode(with_layer(size="4")), OCI_MANIFEST),
    "layer-size-over-int64": (encode(with_layer(size=2**63)), OCI_MANIFEST),
    "layer-annotations-not-object": (encode(with_layer(annotations=["a"])), OCI_MANIFEST),
    "manifests-missing": (encode({"schemaVersion": 2, "mediaType": OCI_INDEX}), OCI_INDEX),
    "manifests-not-list": (encode(index(manifests={})), OCI_INDEX),
    "platform-not-object": (encode(index(manifests=[desc(OCI_MANIFEST, platform="linux/amd64")])), OCI_INDEX),
    "platform-without-os": (encode(index(manifests=[desc(OCI_MANIFEST, platform={"architecture": "amd64"})])), None),
    "platform-variant-number": (
        encode(index(manifests=[desc(OCI_MANIFEST, platform={**plat("linux", "arm"), "variant": 7})])),
        None,
    ),
    "annotations-not-object": (encode(image(annotations="x")), OCI_MANIFEST),
    "annotation-value-number": (encode(image(annotations={"a": 1})), OCI_MANIFEST),
    "artifact-type-number": (encode(image(artifactType=1)), OCI_MANIFEST),
    "artifact-type-malformed": (encode(image(artifactType="sbom")), OCI_MANIFEST),
    "subject-not-object": (encode(image(subject=digest_of(b"s"))), OCI_MANIFEST),
    "subject-without-size": (
        encode(image(subject={"mediaType": OCI_MANIFEST, "digest": digest_of(b"s")})),
        OCI_MANIFEST,
    ),
}


@pytest.mark.parametrize(("body", "content_type"), INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_invalid_manifest(body: bytes, content_type: str | None) -> None:
    err = expect_error(body, content_type)
    assert err.status == 400
    assert isinstance(err.detail, dict) and err.detail["reason"]


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (encode(image(schemaVersion=1)), OCI_MANIFEST, "schemaVersion"),
        (encode(image(OCI_MANIFEST)), DOCKER_MANIFEST, "mediaType"),
        (encode(image(layers=[desc(OCI_LAYER), desc(OCI_LAYER, size=-5)])), OCI_MANIFEST, "layers[1].size"),
        (encode(index(manifests=[desc(OCI_MANIFEST, platform=[])])), OCI_INDEX, "manifests[0].platform"),
    ],
)
def test_invalid_detail_names_the_field(body: bytes, content_type: str, field: str) -> None:
    err = expect_error(body, content_type)
    assert err.detail["field"] == field


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (image(config=desc(OCI_CONFIG, digest="sha256:short")), "config.digest"),
        (with_layer(digest="sha256:" + "A" * 64), "layers[0].digest"),
        (image(subject=desc(OCI_MANIFEST, digest="md5:d41d8cd98f00b204e9800998ecf8427e")), "subject.digest"),
        (index(manifests=[desc(OCI_MANIFEST, digest="not-a-digest")]), "manifests[0].digest"),
    ],
    ids=["config", "layer", "subject", "index-child"],
)
def test_malformed_descriptor_digest_is_digest_invalid(doc: dict[str, Any], field: str) -> None:
    err = expect_error(encode(doc), None, ErrorCode.DIGEST_INVALID)
    assert err.detail["field"] == field
    assert err.status == 400


# --- platform selection ------------------------------------------------------------------------------------------


def child(name: str, platform: dict[str, str] | None) -> Descriptor:
    return Descriptor(OCI_MANIFEST, digest_of(name.encode()), len(name), platform)


ATTESTATION = child("attestation", plat("unknown", "unknown"))


def test_amd64_picked_when_arm64_comes_first() -> None:
    amd64 = child("amd64", plat("linux", "amd64"))
    assert select_platform([child("arm64", plat("linux", "arm64", "v8")), amd64]) == amd64


def test_attestation_entries_are_skipped() -> None:
    amd64 = child("amd64", plat("linux", "amd64"))
    assert select_platform([ATTESTATION, amd64, ATTESTATION]) == amd64
    assert select_platform([ATTESTATION], os="unknown", architecture="unknown") is None


@pytest.mark.parametrize(
    "manifests",
    [
        [],
        [child("arm64", plat("linux", "arm64"))],
        [child("windows", plat("windows", "amd64"))],
        [child("noplatform", None), ATTESTATION],
    ],
    ids=["empty", "other-arch", "other-os", "no-platform"],
)
def test_no_match_is_none(manifests: list[Descriptor]) -> None:
    assert select_platform(manifests) is None


@pytest.mark.parametrize(
    ("entry_variant", "wanted_variant"),
    [(None, "v8"), ("v8", None), ("v8", "v8"), (None, None)],
)
def test_arm64_missing_variant_means_v8(entry_variant: str | None, wanted_variant: str | None) -> None:
    arm64 = child("arm64", plat("linux", "arm64", entry_variant))
    manifests = [child("amd64", plat("linux", "amd64")), arm64]
    assert select_platform(manifests, architecture="arm64", variant=wanted_variant) == arm64


def test_variant_must_match_when_given() -> None:
    manifests = [child("v6", plat("linux", "arm", "v6")), child("v8", plat("linux", "arm64"))]
    assert select_platform(manifests, architecture="arm", variant="v7") is None
    assert select_platform(manifests, architecture="arm64", variant="v9") is None


def test_exact_match_preferred_over_other_variant() -> None:
    v3 = child("v3", plat("linux", "amd64", "v3"))
    plain = child("plain", plat("linux", "amd64"))
    assert select_platform([v3, plain]) == plain
    assert select_platform([v3]) == v3
    assert select_platform([plain, v3], variant="v3") == v3


def test_first_of_equal_matches_wins() -> None:
    first, second = child("a", plat("linux", "amd64")), child("b", plat("linux", "amd64"))
    assert select_platform([first, second]) == first
