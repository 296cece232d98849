"""Pull from a fake registry in-process: an index resolved to this platform, gzip and zstd layers, parallel
fetches, verification before anything becomes visible, and layers shared between images."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import pytest
import zstandard

from runtime import pull as pull_module
from runtime.config import Settings
from runtime.errors import DigestMismatch, RegistryError
from runtime.reference import parse
from runtime.store import Store

from .fake_registry import FakeRegistry, digest_of, publish
from .layers import directory, file, tar_bytes


def test_pull_resolves_the_index_and_unpacks_gzip_and_zstd_layers(tmp_path: Path, registry: FakeRegistry) -> None:
    tars = [tar_bytes([directory("etc"), file("etc/a", b"a")]), tar_bytes([file("etc/b", b"b" * 100_000)])]
    digest = publish(registry, "team/app", "v1", tars)
    store = Store(tmp_path / "store")
    record = pull_module.pull(store, Settings(tmp_path / "c.json"), parse("registry.test/team/app:v1"), quiet=True)
    assert record.manifest == digest
    assert record.diff_ids == [digest_of(t) for t in tars]
    assert (store.layer_dir(record.diff_ids[0]) / "etc/a").read_bytes() == b"a"
    assert (store.layer_dir(record.diff_ids[1]) / "etc/b").read_bytes() == b"b" * 100_000
    assert store.image("registry.test/team/app:v1") == record
    assert os.listdir(store.tmp) == []

    # a second image with the same bottom layer shares its directory and does not fetch it again
    publish(registry, "team/other", "v1", [tars[0], tar_bytes([file("c", b"c")])])
    registry.requests.clear()
    again = pull_module.pull(store, Settings(tmp_path / "c.json"), parse("registry.test/team/other:v1"), quiet=True)
    assert again.diff_ids[0] == record.diff_ids[0]
    fetched = [r.url.path for r in registry.requests if "/blobs/" in r.url.path]
    assert record.layers[0] not in " ".join(fetched)


def test_no_manifest_for_this_platform(tmp_path: Path, registry: FakeRegistry) -> None:
    publish(registry, "app", "v1", [tar_bytes([file("a")])], arch="mips")
    with pytest.raises(RegistryError, match="has no linux/.* manifest .*linux/s390x, linux/mips"):
        pull_module.pull(
            Store(tmp_path / "s"), Settings(tmp_path / "c.json"), parse("registry.test/app:v1"), quiet=True
        )


def test_a_tampered_layer_blob_never_becomes_visible(tmp_path: Path, registry: FakeRegistry) -> None:
    good, evil = tar_bytes([file("a", b"good")]), tar_bytes([file("a", b"evil")])
    publish(registry, "app", "v1", [good])
    layer_digest = next(d for d, b in registry.blobs.items() if b[:2] == b"\x1f\x8b")
    registry.blobs[layer_digest] = gzip.compress(evil)  # served under the good layer's digest
    store = Store(tmp_path / "s")
    with pytest.raises(DigestMismatch, match=layer_digest):
        pull_module.pull(store, Settings(tmp_path / "c.json"), parse("registry.test/app:v1"), quiet=True)
    assert list(store.layers.iterdir()) == [] and os.listdir(store.tmp) == []
    assert not store.has_blob(layer_digest) and store.images() == {}


def test_diff_id_mismatch_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    digest = store.put_blob(gzip.compress(tar_bytes([file("a", b"x")])))
    with pytest.raises(DigestMismatch, match="unpacks to"):
        pull_module.unpack_layer(store, digest, digest_of(b"something else"))
    assert list(store.layers.iterdir()) == [] and os.listdir(store.tmp) == []


def test_zstd_multiframe_stream(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    tar = tar_bytes([file("big", os.urandom(200_000))])
    buf = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(buf, closefd=False) as w:
        w.write(tar[:100_000])
        w.flush(zstandard.FLUSH_FRAME)
        w.write(tar[100_000:])
    digest = store.put_blob(buf.getvalue())
    pull_module.unpack_layer(store, digest, digest_of(tar))
    assert store.has_layer(digest_of(tar))
