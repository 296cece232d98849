"""docker save and docker load through the daemon: a docker-archive whose layers hash to the config's diff_ids, and
back into a store, refused (400, nothing stored) when it is not one."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import AsyncIterator

import httpx
import pytest

from runtime.daemon import images as image_routes

from ..fake_registry import publish
from ..layers import file, tar_bytes
from ..test_progress import UploadingRegistry
from .conftest import Daemon
from .test_images import APP, fake, lines, pull

__all__ = ["fake"]  # the fixture, shared with test_images


@pytest.fixture
async def client(daemon: Daemon, fake: UploadingRegistry) -> AsyncIterator[httpx.AsyncClient]:
    publish(fake, "team/app", "v1", [tar_bytes([file("a", b"a")]), tar_bytes([file("b", b"b" * 50_000)])])
    await daemon.start(image_routes.ROUTES)
    async with daemon.client() as c:
        await pull(c)
        yield c


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def archive(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def test_save_writes_a_docker_archive(client: httpx.AsyncClient) -> None:
    image = (await client.get(f"/images/{APP}:v1/json")).json()
    response = await client.get("/v1.41/images/get", params={"names": f"{APP}:v1"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-tar"
    files = members(response.content)
    (entry,) = json.loads(files["manifest.json"])
    assert entry["RepoTags"] == [f"{APP}:v1"]
    assert sha256(files[entry["Config"]]) == image["Id"]
    assert [sha256(files[name]) for name in entry["Layers"]] == image["RootFS"]["Layers"]
    assert json.loads(files["repositories"]) == {APP: {"v1": image["RootFS"]["Layers"][-1][7:]}}
    by_name = await client.get(f"/images/{APP}:v1/get")
    assert members(by_name.content).keys() == files.keys()


async def test_save_of_an_unknown_image_is_a_404(client: httpx.AsyncClient) -> None:
    missing = await client.get("/images/get", params={"names": ["registry.test/ghost:1"]})
    assert (missing.status_code, missing.json()) == (404, {"message": "No such image: registry.test/ghost:1"})


async def test_load_brings_back_what_save_wrote_and_it_can_be_pushed(
    client: httpx.AsyncClient, daemon: Daemon, fake: UploadingRegistry
) -> None:
    before = (await client.get(f"/images/{APP}:v1/json")).json()
    saved = (await client.get("/images/get", params={"names": f"{APP}:v1"})).content
    await client.delete(f"/images/{APP}:v1")
    assert list(daemon.context.store.layers.iterdir()) == []

    loaded = await client.post("/v1.41/images/load", params={"quiet": "1"}, content=saved)
    assert loaded.status_code == 200 and lines(loaded) == [{"stream": f"Loaded image: {APP}:v1\n"}]
    after = (await client.get(f"/images/{APP}:v1/json")).json()
    assert (after["Id"], after["RootFS"]) == (before["Id"], before["RootFS"])
    store = daemon.context.store
    assert all(store.has_layer(d) for d in after["RootFS"]["Layers"])
    await client.delete(f"/images/{APP}:v1")
    await client.post("/v1.41/images/load", content=saved)
    again = (await client.get(f"/images/{APP}:v1/json")).json()
    assert again["RepoDigests"] == after["RepoDigests"]  # the same layers gzip to the same blobs, every time

    fake.blobs.clear()  # the registry lost everything: the loaded image's blobs are pushed from the store
    pushed = lines(await client.post(f"/images/{APP}/push", params={"tag": "v1"}))
    assert [g["status"] for g in pushed if g.get("status") == "Pushed"] == ["Pushed", "Pushed"]
    assert "aux" in pushed[-1]


async def test_load_accepts_gzip_layers_and_untagged_images(client: httpx.AsyncClient) -> None:
    layer = tar_bytes([file("x", b"x")])
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]}}
    )
    body = archive({
        "manifest.json": json.dumps([{"Config": "c.json", "RepoTags": None, "Layers": ["l/layer.tar"]}]).encode(),
        "c.json": config.encode(),
        "l/layer.tar": gzip.compress(layer),
    })  # fmt: skip
    loaded = await client.post("/images/load", content=body)
    assert lines(loaded) == [{"stream": f"Loaded image ID: {sha256(config.encode())}\n"}]


@pytest.mark.parametrize(
    ("files", "why"),
    [
        ({"x": b"y"}, "no file 'manifest.json'"),
        ({"manifest.json": b"{}"}, "not a list of images"),
        ({"manifest.json": b'[{"Config": "../c.json", "Layers": []}]'}, "no file '../c.json'"),
        ({"manifest.json": b'[{"Config": "c.json", "Layers": ["l"]}]', "c.json": b"{}"}, "rootfs.diff_ids"),
        (
            {
                "manifest.json": b'[{"Config": "c.json", "RepoTags": ["registry.test/bad:1"], "Layers": ["l"]}]',
                "c.json": json.dumps({"rootfs": {"diff_ids": [sha256(b"other")]}}).encode(),
                "l": tar_bytes([file("a")]),
            },
            "but its config says",
        ),
    ],
)
async def test_load_refuses_what_is_not_a_docker_archive(
    client: httpx.AsyncClient, daemon: Daemon, files: dict[str, bytes], why: str
) -> None:
    before = daemon.context.store.images()
    refused = await client.post("/images/load", content=archive(files))
    assert refused.status_code == 400 and why in refused.json()["message"], refused.json()
    assert daemon.context.store.images() == before
    assert list(daemon.context.store.tmp.iterdir()) == []


async def test_load_of_something_that_is_no_tar_is_a_400(client: httpx.AsyncClient) -> None:
    refused = await client.post("/images/load", content=b"hello, this is not a tarball" * 100)
    assert refused.status_code == 400 and "not a tar archive" in refused.json()["message"]
