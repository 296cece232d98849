"""Registry API flows driven with httpx against the live server: referrers, tag delete, pagination."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .client import RegistryClient, expect
from .images import OCI_INDEX, OCI_MANIFEST, OciImage, make_artifact, make_oci_image, tar_files
from .server import RegistryServer, needs_our_server

pytestmark = pytest.mark.e2e

SBOM = "application/vnd.e2e.sbom.v1+json"
SIGNATURE = "application/vnd.e2e.signature.v1+json"


@pytest.fixture
def client(registry_server: RegistryServer) -> Iterator[RegistryClient]:
    with registry_server.client() as c:
        yield c


def tiny_image(content: bytes = b"hello\n") -> OciImage:
    return make_oci_image([tar_files({"hello.txt": content})])


@needs_our_server("GET /v2/<name>/referrers/<digest> (OCI distribution-spec 1.1)")
def test_referrers(client: RegistryClient) -> None:
    repo = "e2e/refs"
    subject = tiny_image()
    client.push_image(repo, subject, "v1")
    artifacts = {}
    for artifact_type in (SBOM, SIGNATURE):
        blobs, manifest = make_artifact(subject.manifest, artifact_type, f"{artifact_type} payload".encode())
        for blob in blobs:
            client.push_blob(repo, blob)
        put = client.put_manifest(repo, manifest.digest, manifest)
        assert put.headers.get("oci-subject") == subject.manifest.digest, f"no OCI-Subject header: {put.headers}"
        artifacts[artifact_type] = manifest

    url = f"/v2/{repo}/referrers/{subject.manifest.digest}"
    listed = expect(client.http.get(url), 200)
    assert listed.headers["content-type"].startswith(OCI_INDEX), listed.headers
    index = listed.json()
    assert index["mediaType"] == OCI_INDEX and index["schemaVersion"] == 2, index
    expected = {t: m.descriptor(artifactType=t) for t, m in artifacts.items()}
    assert sorted(index["manifests"], key=lambda d: d["digest"]) == sorted(expected.values(), key=lambda d: d["digest"])
    assert all(d["mediaType"] == OCI_MANIFEST for d in index["manifests"])

    filtered = expect(client.http.get(url, params={"artifactType": SIGNATURE}), 200)
    assert filtered.headers.get("oci-filters-applied") == "artifactType", filtered.headers
    assert filtered.json()["manifests"] == [expected[SIGNATURE]]

    none = expect(client.http.get(f"/v2/{repo}/referrers/{artifacts[SBOM].digest}"), 200)
    assert none.json()["manifests"] == [], none.text


@needs_our_server("DELETE /v2/<name>/manifests/<tag> (2.8.2 answers 400 DIGEST_INVALID)")
def test_delete_tag_keeps_manifest(client: RegistryClient) -> None:
    repo = "e2e/tagdel"
    image = tiny_image()
    client.push_image(repo, image, "v1")
    client.put_manifest(repo, "v2", image.manifest)

    expect(client.http.delete(f"/v2/{repo}/manifests/v1"), 202)

    expect(client.get_manifest(repo, "v1"), 404)
    assert expect(client.get_manifest(repo, "v2"), 200).content == image.manifest.data
    assert expect(client.get_manifest(repo, image.manifest.digest), 200).content == image.manifest.data
    assert expect(client.http.get(f"/v2/{repo}/tags/list"), 200).json()["tags"] == ["v2"]


def collect_pages(client: RegistryClient, first: str, key: str, page_size: int) -> list[str]:
    pages = list(client.paginate(first, key))
    assert all(len(page) <= page_size for page in pages), f"a page is larger than n={page_size}: {pages}"
    return [item for page in pages for item in page]


def test_catalog_pagination(client: RegistryClient) -> None:
    repos = ["e2e/cat-d", "e2e/cat-a", "e2e/cat-e", "e2e/cat-b/sub", "e2e/cat-c"]
    image = tiny_image()
    for repo in repos:
        client.push_image(repo, image, "latest")

    assert collect_pages(client, "/v2/_catalog?n=2", "repositories", 2) == sorted(repos)
    assert expect(client.http.get("/v2/_catalog"), 200).json()["repositories"] == sorted(repos)


@needs_our_server("n/last pagination of /v2/<name>/tags/list (2.8.2 returns every tag, unsorted)")
def test_tags_pagination(client: RegistryClient) -> None:
    repo = "e2e/tags"
    tags = ["v3", "latest", "v1", "v10", "v2", "beta"]
    image = tiny_image()
    client.push_image(repo, image, tags[0])
    for tag in tags[1:]:
        client.put_manifest(repo, tag, image.manifest)

    assert collect_pages(client, f"/v2/{repo}/tags/list?n=2", "tags", 2) == sorted(tags)
    assert expect(client.http.get(f"/v2/{repo}/tags/list"), 200).json()["tags"] == sorted(tags)
