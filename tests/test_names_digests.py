"""Repository names, tags and digests: the ``registry.names`` / ``registry.digests`` checks and the API's answers.

spec.md "Pulling manifests": ``<name>`` MUST match
``[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*``, a tag
``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``; image-spec descriptor.md "Digests" for ``algorithm:encoded``.
"""

from __future__ import annotations

import hashlib

import httpx
import pytest

from registry.digests import Digest, looks_like_digest
from registry.errors import ErrorCode, RegistryError
from registry.names import NAME_MAX_LENGTH, check_name, check_tag, is_valid_name, is_valid_tag
from tests.api_helpers import (
    UNKNOWN_DIGEST,
    assert_error,
    digest_of,
    push_image,
)

VALID_NAMES = ["a", "a/b-c_d.e/f__g", "a--b", "a---b/c", "0", "library/ubuntu", "a.b.c", "x" * NAME_MAX_LENGTH]
INVALID_NAMES = [
    "",
    "A",
    "Upper/case",
    "a..b",
    "a/../b",
    "a//b",
    "/a",
    "a/",
    "a___b",
    "-a",
    "a-",
    "a_",
    ".a",
    "a b",
    "a:b",
    "x" * (NAME_MAX_LENGTH + 1),
]
SHA256 = hashlib.sha256(b"x").hexdigest()
SHA512 = hashlib.sha512(b"x").hexdigest()


# --- registry.names --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_names(name: str) -> None:
    assert is_valid_name(name)
    assert check_name(name) == name


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_names(name: str) -> None:
    assert not is_valid_name(name)
    with pytest.raises(RegistryError) as info:
        check_name(name)
    assert info.value.code is ErrorCode.NAME_INVALID
    assert info.value.status == 400


@pytest.mark.parametrize("tag", ["a", "A", "_", "9", "v1.0.0-rc_1", "a" * 128, "sha256-" + SHA256])
def test_valid_tags(tag: str) -> None:
    assert is_valid_tag(tag)
    assert check_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", "-a", ".a", "a" * 129, "a:b", "a/b", "a+b", "ä"])
def test_invalid_tags(tag: str) -> None:
    assert not is_valid_tag(tag)
    with pytest.raises(RegistryError) as info:
        check_tag(tag)
    assert info.value.code is ErrorCode.TAG_INVALID


# --- registry.digests ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "algorithm"), [(f"sha256:{SHA256}", "sha256"), (f"sha512:{SHA512}", "sha512")])
def test_parse_digest(value: str, algorithm: str) -> None:
    digest = Digest.parse(value)
    assert digest.algorithm == algorithm
    assert str(digest) == value
    assert digest.hasher().name == algorithm
    assert Digest.of(b"x", algorithm) == digest


@pytest.mark.parametrize(
    "value",
    [
        "",
        SHA256,
        f"sha256:{SHA256.upper()}",
        f"sha256:{SHA256[:-1]}",
        f"sha256:{SHA256}0",
        f"sha512:{SHA256}",
        "sha256:",
        f":{SHA256}",
        f"SHA256:{SHA256}",
        f"md5:{hashlib.md5(b'x').hexdigest()}",
        f"sha384:{hashlib.sha384(b'x').hexdigest()}",
        f"sha256:{SHA256}\n",
        f"sha256 :{SHA256}",
    ],
)
def test_invalid_digests(value: str) -> None:
    with pytest.raises(RegistryError) as info:
        Digest.parse(value)
    assert info.value.code is ErrorCode.DIGEST_INVALID
    assert info.value.status == 400


def test_digest_of_and_ordering() -> None:
    assert str(Digest.of(b"")) == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert str(Digest.of(b"x")) == digest_of(b"x")
    assert sorted([Digest.parse(f"sha512:{SHA512}"), Digest.parse(f"sha256:{SHA256}")])[0].algorithm == "sha256"
    assert looks_like_digest(UNKNOWN_DIGEST)
    assert not looks_like_digest("latest")


# --- the API ---------------------------------------------------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/v2/{}/tags/list"),
    ("GET", "/v2/{}/manifests/latest"),
    ("HEAD", "/v2/{}/manifests/latest"),
    ("PUT", "/v2/{}/manifests/latest"),
    ("DELETE", "/v2/{}/manifests/latest"),
    ("GET", f"/v2/{{}}/blobs/{UNKNOWN_DIGEST}"),
    ("HEAD", f"/v2/{{}}/blobs/{UNKNOWN_DIGEST}"),
    ("DELETE", f"/v2/{{}}/blobs/{UNKNOWN_DIGEST}"),
    ("POST", "/v2/{}/blobs/uploads/"),
    ("GET", "/v2/{}/blobs/uploads/00000000-0000-4000-8000-000000000000"),
    ("GET", f"/v2/{{}}/referrers/{UNKNOWN_DIGEST}"),
]
# as sent on the wire: httpx would resolve a literal "..", so it is percent-encoded (the server sees "a/../b")
API_INVALID_NAMES = ["Upper", "a..b", "a/%2E%2E/b", "a//b", "/a", "a/", "a___b", "x" * (NAME_MAX_LENGTH + 1)]


@pytest.mark.parametrize("name", API_INVALID_NAMES)
@pytest.mark.parametrize(("method", "template"), ENDPOINTS)
async def test_invalid_name_refused(client: httpx.AsyncClient, method: str, template: str, name: str) -> None:
    # "Error Codes": NAME_INVALID (400) for a name outside the grammar, on every endpoint taking a name
    response = await client.request(method, template.format(name))
    assert_error(response, 400, "NAME_INVALID")
    catalog = (await client.get("/v2/_catalog")).json()["repositories"]
    assert catalog == []


@pytest.mark.parametrize("name", ["a", "a/b-c_d.e/f__g", "a--b/c---d", "x" * NAME_MAX_LENGTH, "9/8/7/6/5"])
async def test_edge_names_accepted(client: httpx.AsyncClient, name: str) -> None:
    _, digest = await push_image(client, name, "latest")
    assert (await client.get(f"/v2/{name}/manifests/{digest}")).status_code == 200
    assert (await client.get(f"/v2/{name}/tags/list")).json() == {"name": name, "tags": ["latest"]}
    assert name in (await client.get("/v2/_catalog")).json()["repositories"]
