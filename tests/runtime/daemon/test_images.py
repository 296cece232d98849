"""The image routes over a private socket, against the fake registry: pull and push stream dockerd's JSON lines,
images/json and inspect describe what is stored, tag and rmi change it; errors as dockerd answers them."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import os
import threading
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from runtime import pull as pull_module
from runtime import push as push_module
from runtime.client import RegistryClient
from runtime.config import Settings
from runtime.daemon import images as image_routes
from runtime.store import write_json_atomic

from ..fake_registry import publish
from ..layers import file, tar_bytes
from ..test_progress import UploadingRegistry
from .conftest import Daemon

APP = "registry.test/team/app"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> UploadingRegistry:
    """The registry the daemon's pull and push reach, with the credentials the request's settings carry."""
    registry = UploadingRegistry()

    def client_for(settings: Settings, name: str, endpoint: str) -> RegistryClient:
        return RegistryClient(endpoint, credentials=settings.credentials(name), transport=registry.transport())

    monkeypatch.setattr(pull_module, "client_for", client_for)
    monkeypatch.setattr(push_module, "client_for", client_for)
    return registry


@pytest.fixture
async def client(daemon: Daemon, fake: UploadingRegistry) -> AsyncIterator[httpx.AsyncClient]:
    publish(fake, "team/app", "v1", [tar_bytes([file("a", b"a")]), tar_bytes([file("b", b"b" * 50_000)])])
    await daemon.start(image_routes.ROUTES)
    async with daemon.client() as c:
        yield c


def auth(doc: dict[str, str]) -> dict[str, str]:
    return {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()}


def lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.text.endswith("\n")
    return [json.loads(line) for line in response.text.splitlines()]


async def pull(client: httpx.AsyncClient, name: str = APP, tag: str = "v1", **kw: Any) -> httpx.Response:
    return await client.post("/v1.41/images/create", params={"fromImage": name, "tag": tag}, **kw)


async def test_pull_streams_dockers_progress_lines(client: httpx.AsyncClient) -> None:
    response = await pull(client, headers={"X-Registry-Auth": "e30="})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    got = lines(response)
    assert got[0] == {"status": "Pulling from team/app", "id": "v1"}
    layer_ids = [g["id"] for g in got if g.get("status") == "Pulling fs layer"]
    assert len(layer_ids) == 2
    for layer in layer_ids:
        assert {"status": "Download complete", "progressDetail": {}, "id": layer} in got
        assert {"status": "Pull complete", "progressDetail": {}, "id": layer} in got
    downloading = [g for g in got if g.get("status") == "Downloading"]
    assert downloading and all(set(g["progressDetail"]) == {"current", "total"} for g in downloading)
    assert got[-2]["status"].startswith("Digest: sha256:")
    assert got[-1] == {"status": f"Status: Downloaded newer image for {APP}:v1"}

    again = lines(await pull(client, "registry.test/team/app:v1", ""))  # the tag inside fromImage
    assert again[-1] == {"status": f"Status: Image is up to date for {APP}:v1"}


async def test_a_missing_manifest_is_a_404_before_any_line(client: httpx.AsyncClient) -> None:
    response = await pull(client, "registry.test/no/such")
    assert response.status_code == 404
    message = response.json()["message"]
    assert message.startswith("manifest for registry.test/no/such:v1 not found: ") and "MANIFEST_UNKNOWN" in message


async def test_a_bad_reference_is_a_400(client: httpx.AsyncClient) -> None:
    response = await pull(client, "Bad/Name")
    assert response.status_code == 400 and "invalid reference format" in response.json()["message"]
    assert (await client.post("/images/create")).status_code == 400


async def test_a_failure_after_the_first_line_ends_the_stream_with_error_detail(
    client: httpx.AsyncClient, fake: UploadingRegistry
) -> None:
    layer = next(d for d, b in fake.blobs.items() if b[:2] == b"\x1f\x8b")
    fake.blobs[layer] = gzip.compress(b"not what the digest says")
    response = await pull(client)
    assert response.status_code == 200
    got = lines(response)
    assert got[0]["status"] == "Pulling from team/app"
    assert set(got[-1]) == {"errorDetail", "error"} and layer in got[-1]["error"]
    assert got[-1]["errorDetail"] == {"message": got[-1]["error"]}
    assert (await client.get("/images/json")).json() == []


async def test_registry_credentials_come_from_x_registry_auth(
    client: httpx.AsyncClient, fake: UploadingRegistry
) -> None:
    fake.auth, fake.credentials = "basic", ("alice", "s3cret")
    refused = await pull(client, headers={"X-Registry-Auth": "e30="})
    assert refused.status_code == 500 and "needs credentials" in refused.json()["message"]
    wrong = await pull(client, headers=auth({"username": "alice", "password": "nope"}))
    assert wrong.status_code == 500 and "401" in wrong.json()["message"]
    header = auth({"username": "alice", "password": "s3cret", "serveraddress": "registry.test"})
    assert lines(await pull(client, headers=header))[-1]["status"].startswith("Status: Downloaded newer image")


async def test_images_and_inspect_describe_what_is_stored(client: httpx.AsyncClient) -> None:
    digest = lines(await pull(client))[-2]["status"].removeprefix("Digest: ")
    (summary,) = (await client.get("/images/json")).json()
    assert summary["RepoTags"] == [f"{APP}:v1"] and summary["RepoDigests"] == [f"{APP}@{digest}"]
    assert summary["Id"].startswith("sha256:") and summary["Size"] > 0 and summary["Created"] >= 0
    assert set(summary) >= {"Containers", "Labels", "ParentId", "SharedSize", "VirtualSize"}

    for name in (f"{APP}:v1", f"{APP}@{digest}", summary["Id"], summary["Id"][7:19]):
        found = await client.get(f"/v1.41/images/{name}/json")
        assert found.status_code == 200, name
        doc = found.json()
        assert doc["Id"] == summary["Id"] and len(doc["RootFS"]["Layers"]) == 2 and doc["Os"] == "linux"
    missing = await client.get("/images/registry.test/ghost:1/json")
    assert (missing.status_code, missing.json()) == (404, {"message": "No such image: registry.test/ghost:1"})
    for name, said in (("ghost", "ghost:latest"), ("docker.io/library/ghost", "ghost:latest"), ("abc123", "abc123")):
        assert (await client.get(f"/images/{name}/json")).json() == {"message": f"No such image: {said}"}

    filtered = await client.get("/images/json", params={"filters": json.dumps({"reference": {"*/team/app": True}})})
    assert len(filtered.json()) == 1
    other = await client.get("/images/json", params={"filters": json.dumps({"reference": {"other": True}})})
    assert other.json() == []


async def test_tag_then_push_mounts_and_ends_with_aux(client: httpx.AsyncClient, fake: UploadingRegistry) -> None:
    await pull(client)
    fake.held["team/copy"] = set()
    tagged = await client.post(f"/v1.41/images/{APP}:v1/tag", params={"repo": "registry.test/team/copy", "tag": "v2"})
    assert tagged.status_code == 201
    (summary,) = (await client.get("/images/json")).json()
    assert summary["RepoTags"] == [f"{APP}:v1", "registry.test/team/copy:v2"]

    response = await client.post(
        "/v1.41/images/registry.test/team/copy/push", params={"tag": "v2"}, headers={"X-Registry-Auth": "e30="}
    )
    got = lines(response)
    assert got[0] == {"status": "The push refers to repository [registry.test/team/copy]"}
    mounted = [g["id"] for g in got if g.get("status") == "Mounted from team/app"]
    config = (await client.get("/images/registry.test/team/copy:v2/json")).json()["Id"]
    assert len(mounted) == 2 and config[7:19] not in mounted  # the two layers: docker shows no line for the config
    digest = got[-1]["aux"]["Digest"]
    assert got[-1] == {"progressDetail": {}, "aux": {"Tag": "v2", "Digest": digest, "Size": got[-1]["aux"]["Size"]}}
    assert fake.manifests["team/copy:v2"][1] == fake.manifests[f"team/app:{digest}"][1]


async def test_tag_and_push_errors(client: httpx.AsyncClient) -> None:
    missing = await client.post("/images/registry.test/ghost:1/tag", params={"repo": "registry.test/x", "tag": "1"})
    assert (missing.status_code, missing.json()["message"]) == (404, "No such image: registry.test/ghost:1")
    await pull(client)
    bad = await client.post(f"/images/{APP}:v1/tag", params={"repo": "Bad", "tag": "1"})
    assert bad.status_code == 400
    assert (await client.post(f"/images/{APP}:v1/tag")).status_code == 400
    nothing = await client.post("/images/registry.test/ghost/push", params={"tag": "1"})
    assert nothing.status_code == 404
    assert nothing.json()["message"] == "An image does not exist locally with the tag: registry.test/ghost"


async def test_rmi_untags_then_deletes(client: httpx.AsyncClient, daemon: Daemon) -> None:
    await pull(client)
    await client.post(f"/images/{APP}:v1/tag", params={"repo": APP, "tag": "v2"})
    first = await client.delete(f"/v1.41/images/{APP}:v2")
    assert first.json() == [{"Untagged": f"{APP}:v2"}]  # v1 still names the image in the same repository
    (summary,) = (await client.get("/images/json")).json()
    second = (await client.delete(f"/v1.41/images/{APP}:v1")).json()
    assert second[0] == {"Untagged": f"{APP}:v1"} and second[1]["Untagged"].startswith(f"{APP}@sha256:")
    assert {"Deleted": summary["Id"]} in second and len(second) == 5  # the image, then its two layers
    store = daemon.context.store
    assert list(store.layers.iterdir()) == [] and list(store.blobs.iterdir()) == []
    gone = await client.delete(f"/images/{APP}:v1")
    assert (gone.status_code, gone.json()) == (404, {"message": f"No such image: {APP}:v1"})


async def test_rmi_refuses_an_image_a_container_uses_unless_forced(client: httpx.AsyncClient, daemon: Daemon) -> None:
    await pull(client)
    store = daemon.context.store
    record = store.images()[f"{APP}:v1"]
    cid = "c0ffee" * 10 + "c0ff"
    (store.container_dir(cid)).mkdir()
    write_json_atomic(
        store.container_dir(cid) / "container.json",
        {"id": cid, "name": "user", "image": f"{APP}:v1", "manifest": record.manifest, "diff_ids": record.diff_ids,
         "created": "2026-01-01T00:00:00", "args": [], "options": {}},
    )  # fmt: skip
    refused = await client.delete(f"/images/{APP}:v1")
    assert refused.status_code == 409
    assert refused.json()["message"] == (
        f'conflict: unable to remove repository reference "{APP}:v1" (must force) - container {cid[:12]} is using '
        f"its referenced image {record.config[7:19]}"
    )
    forced = await client.delete(f"/images/{APP}:v1", params={"force": "1"})
    assert forced.status_code == 200 and forced.json()[0] == {"Untagged": f"{APP}:v1"}
    assert all(store.has_layer(d) for d in record.diff_ids)  # the container still has its layers


async def test_rmi_by_id_of_an_image_with_two_names_needs_force(client: httpx.AsyncClient) -> None:
    await pull(client)
    await client.post(f"/images/{APP}:v1/tag", params={"repo": "registry.test/other", "tag": "1"})
    (summary,) = (await client.get("/images/json")).json()
    refused = await client.delete(f"/images/{summary['Id'][7:19]}")
    assert refused.status_code == 409 and "referenced in multiple repositories" in refused.json()["message"]
    forced = (await client.delete(f"/images/{summary['Id']}", params={"force": "true"})).json()
    assert {"Untagged": f"{APP}:v1"} in forced and {"Untagged": "registry.test/other:1"} in forced
    assert (await client.get("/images/json")).json() == []


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("docker.io/library/busybox:1", "busybox:1"),
        ("docker.io/me/app:2", "me/app:2"),
        ("docker.io/library/a/b:3", "library/a/b:3"),
        ("localhost:5000/library/x:1", "localhost:5000/library/x:1"),
    ],
)
def test_docker_io_names_are_shown_as_docker_shows_them(stored: str, shown: str) -> None:
    assert image_routes.familiar(stored) == shown


async def test_push_without_a_tag_pushes_every_tag_of_the_repository(client: httpx.AsyncClient) -> None:
    await pull(client)
    await client.post(f"/images/{APP}:v1/tag", params={"repo": APP, "tag": "v2"})
    got = lines(await client.post(f"/images/{APP}/push"))
    assert sorted(g["aux"]["Tag"] for g in got if "aux" in g) == ["v1", "v2"]


async def test_push_takes_credentials_from_x_registry_auth_and_reports_a_refusal_in_the_stream(
    client: httpx.AsyncClient, fake: UploadingRegistry
) -> None:
    await pull(client)
    fake.auth, fake.credentials = "basic", ("alice", "s3cret")
    refused = lines(await client.post(f"/images/{APP}/push", params={"tag": "v1"}))
    assert refused[0]["status"].startswith("The push refers to")  # the stream had begun: the error is its last line
    assert "needs credentials" in refused[-1]["error"]
    header = auth({"username": "alice", "password": "s3cret"})
    pushed = lines(await client.post(f"/images/{APP}/push", params={"tag": "v1"}, headers=header))
    assert pushed[-1]["aux"]["Tag"] == "v1"


class GatedStream(httpx.SyncByteStream):
    """A blob that sends its first bytes, then the rest only once `gate` is set."""

    def __init__(self, data: bytes, gate: threading.Event) -> None:
        self.data, self.gate = data, gate

    def __iter__(self) -> Iterator[bytes]:
        yield self.data[:100]
        self.gate.wait(60)
        yield self.data[100:]


async def test_a_client_that_leaves_stops_the_pull(
    daemon: Daemon, fake: UploadingRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = os.urandom(300_000)
    publish(fake, "team/app", "v1", [tar_bytes([file("big", big)])])
    layer = next(d for d, b in fake.blobs.items() if b[:2] == b"\x1f\x8b")
    relays: list[threading.Event] = []  # the relay's "the client went away" flag: the blob waits for it

    class Recorded(threading.Event):
        def __init__(self) -> None:
            super().__init__()
            relays.append(self)

    monkeypatch.setattr(image_routes, "threading", SimpleNamespace(Event=Recorded))
    plain_blob = fake._blob
    monkeypatch.setattr(
        fake,
        "_blob",
        lambda r, d: (
            httpx.Response(200, stream=GatedStream(fake.blobs[d], relays[0])) if d == layer else plain_blob(r, d)
        ),
    )
    ended: list[BaseException | None] = []
    done = threading.Event()
    real_pull = pull_module.pull

    def pull_and_tell(*args: Any, **kw: Any) -> Any:
        try:
            return real_pull(*args, **kw)
        except BaseException as exc:
            ended.append(exc)
            raise
        finally:
            done.set()

    monkeypatch.setattr(pull_module, "pull", pull_and_tell)
    await daemon.start(image_routes.ROUTES)
    reader, writer = await asyncio.open_unix_connection(str(daemon.socket))
    writer.write(b"POST /v1.41/images/create?fromImage=registry.test/team/app&tag=v1 HTTP/1.1\r\nHost: d\r\n\r\n")
    assert b"Pulling from team/app" in await reader.readuntil(b"}\n")
    writer.close()
    assert await asyncio.to_thread(done.wait, 60)
    assert len(ended) == 1 and isinstance(ended[0], ConnectionError)
    store = daemon.context.store
    assert store.images() == {} and os.listdir(store.tmp) == [] and list(store.layers.iterdir()) == []
