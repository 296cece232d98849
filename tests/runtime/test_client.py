"""The registry client against a fake registry: docker's token flow, Basic, Range resume, verification, errors."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from runtime.client import RegistryClient
from runtime.errors import AuthError, DigestMismatch, RegistryError
from runtime.mediatypes import OCI_MANIFEST

from .fake_registry import TOKEN, FakeRegistry, digest_of


def client(registry: FakeRegistry, credentials: tuple[str, str] | None = None) -> RegistryClient:
    return RegistryClient("registry.test", credentials=credentials, transport=registry.transport())


def test_bearer_challenge_gets_a_token_for_the_scope_with_credentials() -> None:
    registry = FakeRegistry(auth="bearer", credentials=("alice", "pw"))
    registry.add_manifest("team/app", "v1", {"schemaVersion": 2, "config": {}}, OCI_MANIFEST)
    with client(registry, ("alice", "pw")) as c:
        manifest = c.get_manifest("team/app", "v1")
        c.get_manifest("team/app", "v1")  # the token is reused
    assert manifest.media_type == OCI_MANIFEST
    token_requests = [r for r in registry.requests if r.url.host == "auth.test"]
    assert len(token_requests) == 1
    params = token_requests[0].url.params
    assert params["service"] == "registry.test" and params.get_list("scope") == ["repository:team/app:pull"]
    assert token_requests[0].headers["authorization"] == "Basic " + base64.b64encode(b"alice:pw").decode()
    assert registry.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"


def test_bearer_token_refused_is_an_auth_error() -> None:
    registry = FakeRegistry(auth="bearer", credentials=("alice", "pw"))
    with client(registry, ("alice", "wrong")) as c, pytest.raises(AuthError, match="refused with the stored"):
        c.get_manifest("team/app", "v1")


def test_basic_challenge_resends_with_credentials() -> None:
    registry = FakeRegistry(auth="basic", credentials=("bob", "pw"))
    registry.add_manifest("app", "v1", {"schemaVersion": 2, "config": {}}, OCI_MANIFEST)
    with client(registry, ("bob", "pw")) as c:
        c.get_manifest("app", "v1")
    with client(registry) as c, pytest.raises(AuthError, match="runtime login registry.test"):
        c.get_manifest("app", "v1")


def test_refusals_carry_the_spec_code_and_message() -> None:
    with client(FakeRegistry()) as c, pytest.raises(RegistryError) as info:
        c.get_manifest("app", "missing")
    assert info.value.status == 404
    assert "HTTP 404 MANIFEST_UNKNOWN: manifest unknown to registry" in str(info.value)


def test_manifest_by_digest_is_verified() -> None:
    registry = FakeRegistry()
    registry.manifests["app:" + digest_of(b"{}")] = (OCI_MANIFEST, b'{"tampered": 1}')
    with client(registry) as c, pytest.raises(DigestMismatch):
        c.get_manifest("app", digest_of(b"{}"))


def test_dropped_download_resumes_with_range(tmp_path: Path) -> None:
    registry = FakeRegistry()
    data = os.urandom(300_000)
    desc = registry.add_blob(data)
    registry.drops[desc["digest"]] = 100_000
    seen: list[int] = []
    with client(registry) as c:
        c.fetch_blob("app", desc["digest"], desc["size"], tmp_path / "blob", seen.append)
    assert (tmp_path / "blob").read_bytes() == data
    blob_requests = [r for r in registry.requests if "/blobs/" in r.url.path]
    assert [r.headers.get("range") for r in blob_requests] == [None, "bytes=100000-"]
    assert sum(seen) == len(data)


def test_server_without_range_support_restarts_the_download(tmp_path: Path) -> None:
    registry = FakeRegistry(ignore_range=True)
    data = os.urandom(50_000)
    desc = registry.add_blob(data)
    registry.drops[desc["digest"]] = 20_000
    with client(registry) as c:
        c.fetch_blob("app", desc["digest"], desc["size"], tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == data


@pytest.mark.parametrize("size_delta", [-1, 1])
def test_wrong_size_or_digest_is_refused(tmp_path: Path, size_delta: int) -> None:
    registry = FakeRegistry()
    desc = registry.add_blob(b"x" * 1000)
    with client(registry) as c, pytest.raises(DigestMismatch):
        c.fetch_blob("app", desc["digest"], desc["size"] + size_delta, tmp_path / "blob")
    registry.blobs[desc["digest"]] = b"y" * 1000
    with client(registry) as c, pytest.raises(DigestMismatch):
        c.fetch_blob("app", desc["digest"], desc["size"], tmp_path / "blob")


@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_ping_checks_credentials(auth: str) -> None:
    registry = FakeRegistry(auth=auth, credentials=("carol", "pw"))
    with client(registry, ("carol", "pw")) as c:
        c.ping()
    with client(registry, ("carol", "wrong")) as c, pytest.raises(AuthError):
        c.ping()
