"""Pull and push report progress as events, in docker's words; the CLI's bars and lines and the daemon's JSON lines
are consumers of the same events."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from runtime import pull as pull_module
from runtime import push as push_module
from runtime.client import RegistryClient
from runtime.config import Settings
from runtime.progress import Bars, Event, PushLines, error_line, json_line, short
from runtime.reference import parse
from runtime.store import Store

from .fake_registry import FakeRegistry, digest_of, publish
from .layers import file, tar_bytes


@dataclass
class UploadingRegistry(FakeRegistry):
    """The fake registry that also takes uploads (POST, then one PUT with the digest), mounts and manifests.
    A repository named in `held` has only the blobs listed there."""

    held: dict[str, set[str]] = field(default_factory=dict)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        repo = path.removeprefix("/v2/").partition("/blobs/")[0]
        if request.method == "POST" and path.endswith("/blobs/uploads/"):
            self.requests.append(request)
            mount = request.url.params.get("mount", "")
            if mount in self.blobs and request.url.params.get("from"):
                self.held.get(repo, set()).add(mount)
                return httpx.Response(201)
            return httpx.Response(202, headers={"location": "/upload/1"})
        if request.method == "HEAD" and repo in self.held and path.rpartition("/")[2] not in self.held[repo]:
            return httpx.Response(404)
        if request.method == "PUT" and path == "/upload/1":
            self.requests.append(request)
            data = request.read()
            self.blobs[digest_of(data)] = data
            return httpx.Response(201)
        if request.method == "PUT" and "/manifests/" in path:
            self.requests.append(request)
            repo, _, ref = path.removeprefix("/v2/").partition("/manifests/")
            self.manifests[f"{repo}:{ref}"] = (request.headers["content-type"], request.read())
            return httpx.Response(201, headers={"docker-content-digest": digest_of(request.content)})
        return super().handle(request)


@pytest.fixture
def uploading(monkeypatch: pytest.MonkeyPatch) -> UploadingRegistry:
    fake = UploadingRegistry()

    def client_for(settings: Settings, registry: str, endpoint: str) -> RegistryClient:
        return RegistryClient(endpoint, transport=fake.transport())

    monkeypatch.setattr(pull_module, "client_for", client_for)
    monkeypatch.setattr(push_module, "client_for", client_for)
    return fake


def by_layer(events: list[Event], layer: str) -> list[str]:
    """The statuses one layer went through, consecutive repeats (Downloading n, n+1, ...) once."""
    statuses: list[str] = []
    for event in events:
        if event.id == layer and (not statuses or statuses[-1] != event.status):
            statuses.append(event.status)
    return statuses


def test_pull_reports_each_layer_in_dockers_words(tmp_path: Path, uploading: UploadingRegistry) -> None:
    tars = [tar_bytes([file("a", b"a")]), tar_bytes([file("b", b"b" * 300_000)])]
    publish(uploading, "team/app", "v1", tars)
    store, settings = Store(tmp_path / "s"), Settings(tmp_path / "c.json")
    events: list[Event] = []
    record = pull_module.pull(store, settings, parse("registry.test/team/app:v1"), report=events.append)
    assert events[0] == Event("Pulling from team/app", "v1", about="image")
    for digest in record.layers:
        assert by_layer(events, short(digest)) == [
            "Pulling fs layer",
            "Downloading",
            "Verifying Checksum",
            "Download complete",
            "Extracting",
            "Pull complete",
        ]
        downloads = [e for e in events if e.id == short(digest) and e.status == "Downloading"]
        size = store.blob_path(digest).stat().st_size
        assert downloads[-1].current == downloads[-1].total == size
        assert len(downloads) <= 101  # throttled: a step per percent at most
    assert events[-2:] == [
        Event(f"Digest: {record.manifest}"),
        Event("Status: Downloaded newer image for registry.test/team/app:v1"),
    ]

    again: list[Event] = []
    pull_module.pull(store, settings, parse("registry.test/team/app:v1"), report=again.append)
    assert [by_layer(again, short(d)) for d in record.layers] == [["Already exists"], ["Already exists"]]
    assert again[-1] == Event("Status: Image is up to date for registry.test/team/app:v1")


def test_layers_beyond_the_parallel_downloads_are_waiting(tmp_path: Path, uploading: UploadingRegistry) -> None:
    tars = [tar_bytes([file(f"f{i}", bytes([i]) * 10)]) for i in range(pull_module.PARALLEL_LAYERS + 2)]
    publish(uploading, "app", "v1", tars)
    events: list[Event] = []
    record = pull_module.pull(
        Store(tmp_path / "s"), Settings(tmp_path / "c.json"), parse("registry.test/app:v1"), report=events.append
    )
    waiting = [short(d) for d in record.layers if "Waiting" in by_layer(events, short(d))]
    assert waiting == [short(d) for d in record.layers[pull_module.PARALLEL_LAYERS :]]
    assert by_layer(events, waiting[0])[:3] == ["Pulling fs layer", "Waiting", "Downloading"]


def test_a_failed_pull_reports_nothing_before_the_manifest_is_found(
    tmp_path: Path, uploading: UploadingRegistry
) -> None:
    events: list[Event] = []
    with pytest.raises(Exception, match="MANIFEST_UNKNOWN"):
        pull_module.pull(
            Store(tmp_path / "s"),
            Settings(tmp_path / "c.json"),
            parse("registry.test/no/such:v1"),
            report=events.append,
        )
    assert events == []  # the daemon can still answer with a status of its own


def test_push_reports_preparing_then_each_blobs_fate_and_the_digest(
    tmp_path: Path, uploading: UploadingRegistry
) -> None:
    publish(uploading, "team/app", "v1", [tar_bytes([file("a", b"a")])])
    store, settings = Store(tmp_path / "s"), Settings(tmp_path / "c.json")
    record = pull_module.pull(store, settings, parse("registry.test/team/app:v1"), quiet=True)
    retagged = parse("registry.test/team/copy:v2")
    uploading.held["team/copy"] = set()
    images = store.images()
    images[str(retagged)] = images["registry.test/team/app:v1"]
    store.save_images(images)

    events: list[Event] = []
    digest = push_module.push(store, settings, retagged, events.append)
    assert events[0] == Event("The push refers to repository [registry.test/team/copy]")
    layer, config = short(record.layers[0]), short(record.config)
    assert by_layer(events, layer) == ["Preparing", "Mounted from team/app"]
    assert by_layer(events, config) == ["Preparing", "Mounted from team/app"]
    size = len(store.read_blob(record.manifest))
    assert events[-2:] == [
        Event(f"v2: digest: {digest} size: {size}"),
        Event("", aux={"Tag": "v2", "Digest": digest, "Size": size}),
    ]

    del uploading.blobs[record.layers[0]]  # gone from the registry: uploaded again, its bytes counted
    fresh: list[Event] = []
    push_module.push(store, settings, parse("registry.test/team/app:v1"), fresh.append)
    assert by_layer(fresh, layer) == ["Preparing", "Pushing", "Pushed"]
    assert by_layer(fresh, config) == ["Preparing", "Layer already exists"]
    pushing = [e for e in fresh if e.status == "Pushing"]
    blob_size = store.blob_path(record.layers[0]).stat().st_size
    assert (pushing[-1].current, pushing[-1].total) == (blob_size, blob_size)


def test_json_lines_are_what_dockerd_writes() -> None:
    """Shapes from dockerd's own answers to POST /images/create and /images/{name}/push (the recordings)."""
    lines = [
        Event("Pulling from bbtest", "1", about="image"),
        Event("Pulling fs layer", "d4a7392914d8"),
        Event("Downloading", "d4a7392914d8", 36445, 1064542),
        Event("Digest: sha256:70"),
        Event("", aux={"Tag": "1", "Digest": "sha256:df", "Size": 527}),
    ]
    assert [json.loads(json_line(e)) for e in lines] == [
        {"status": "Pulling from bbtest", "id": "1"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "d4a7392914d8"},
        {"status": "Downloading", "progressDetail": {"current": 36445, "total": 1064542}, "id": "d4a7392914d8"},
        {"status": "Digest: sha256:70"},
        {"progressDetail": {}, "aux": {"Tag": "1", "Digest": "sha256:df", "Size": 527}},
    ]
    assert all(json_line(e).endswith(b"}\n") and json_line(e).count(b"\n") == 1 for e in lines)
    assert json_line(Event("Pushed", "abc", about="config")) == b""  # runtime push shows the config; docker does not
    assert json.loads(error_line("manifest unknown")) == {
        "errorDetail": {"message": "manifest unknown"},
        "error": "manifest unknown",
    }


def test_bars_follow_each_layer_to_the_end() -> None:
    out = io.StringIO()
    with Bars(console=Console(file=out, force_terminal=True, width=100)) as bars:
        bars(Event("Pulling from app", "v1", about="image"))  # about the image: no bar
        bars(Event("Pulling fs layer", "aaa"))
        bars(Event("Downloading", "aaa", 50, 200))
        assert bars.progress is not None
        (task,) = bars.progress.tasks
        assert (task.description, task.completed, task.total, task.fields["status"]) == ("aaa", 50, 200, "Downloading")
        bars(Event("Pull complete", "aaa"))
        assert (task.completed, task.fields["status"]) == (200, "Pull complete")
        bars(Event("Already exists", "bbb"))
        assert bars.progress.tasks[1].finished
    assert "aaa" in out.getvalue() and "bbb" in out.getvalue()


def test_quiet_bars_draw_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with Bars(quiet=True) as bars:
        bars(Event("Downloading", "aaa", 1, 2))
    assert bars.progress is None and capsys.readouterr() == ("", "")


def test_push_lines_keep_the_clis_output() -> None:
    said: list[str] = []
    lines = PushLines(said.append)
    for event in (
        Event("The push refers to repository [r/x]"),
        Event("Preparing", "aaa"),
        Event("Pushing", "aaa", 1, 2),
        Event("Pushed", "aaa"),
        Event("Layer already exists", "bbb"),
        Event("Mounted from team/app", "ccc"),
        Event("v1: digest: sha256:dd size: 9"),
        Event("", aux={"Tag": "v1"}),
    ):
        lines(event)
    assert said == [
        "aaa: Pushed",
        "bbb: Layer already exists",
        "ccc: Mounted from team/app",
        "v1: digest: sha256:dd size: 9",
    ]
