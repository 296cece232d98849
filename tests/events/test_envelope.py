"""distribution's notification envelope (notifications/event.go, events v1) and the notifications section."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from registry.config import ConfigError
from registry.events.endpoints import DEFAULT_THRESHOLD, Notifications
from registry.events.envelope import ENVELOPE_MEDIA_TYPE, Event, RequestRecord, Source, Target, envelope
from tests.conftest import make_config

SOURCE = Source("registry-1:5000", "instance-1")


def test_a_push_event_has_distributions_fields_and_leaves_empty_ones_out() -> None:
    target = Target("team/app", "sha256:" + "a" * 64, "application/vnd.oci.image.manifest.v1+json", 42, "http://r/x")
    request = RequestRecord("req-1", "10.0.0.1:40000", "registry.example", "PUT", "docker/27.0")
    when = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    event = Event("push", replace(target, tag="v1"), SOURCE, request, "alice", "event-1", when)
    assert json.loads(event.encoded()) == {
        "id": "event-1",
        "timestamp": "2024-05-01T12:00:00.123456Z",
        "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": 42,
            "digest": "sha256:" + "a" * 64,
            "length": 42,
            "repository": "team/app",
            "url": "http://r/x",
            "tag": "v1",
        },
        "request": {
            "id": "req-1",
            "addr": "10.0.0.1:40000",
            "host": "registry.example",
            "method": "PUT",
            "useragent": "docker/27.0",
        },
        "actor": {"name": "alice"},
        "source": {"addr": "registry-1:5000", "instanceID": "instance-1"},
    }


def test_an_event_without_a_request_is_the_collectors() -> None:
    event = Event("delete", Target("team/app", digest="sha256:" + "b" * 64), SOURCE)
    found = json.loads(event.encoded())
    assert "request" not in found and found["actor"] == {}
    assert found["target"] == {"repository": "team/app", "digest": "sha256:" + "b" * 64}


def test_an_envelope_holds_events_as_the_outbox_kept_them() -> None:
    events = [Event("pull", Target("a", "sha256:" + "c" * 64), SOURCE).encoded() for _ in range(2)]
    assert ENVELOPE_MEDIA_TYPE == "application/vnd.docker.distribution.events.v1+json"
    assert json.loads(envelope(events)) == {"events": [json.loads(e) for e in events]}


# --- the notifications section ---


def notifications(tmp_path: Path, section: object) -> Notifications:
    config = make_config(tmp_path, "inmemory")
    return Notifications.from_config(replace(config, raw={**config.raw, "notifications": section}))


def test_the_section_as_distribution_documents_it(tmp_path: Path) -> None:
    found = notifications(
        tmp_path,
        {
            "events": {"includereferences": True},
            "endpoints": [
                {
                    "name": "alistener",
                    "url": "https://listener.example/event",
                    "headers": {"Authorization": ["Bearer t"]},
                    "timeout": "500ms",
                    "threshold": 5,
                    "backoff": "1s",
                    "ignoredmediatypes": ["application/octet-stream"],
                    "ignore": {"mediatypes": ["text/plain"], "actions": ["pull"]},
                },
                {"name": "off", "url": "http://127.0.0.1:9/", "disabled": True},
            ],
        },
    )
    assert found.include_references
    (endpoint,) = found.endpoints  # the disabled one is left out
    assert (endpoint.name, endpoint.timeout, endpoint.threshold, endpoint.backoff) == ("alistener", 0.5, 5, 1.0)
    assert endpoint.headers == (("Authorization", "Bearer t"),)
    assert endpoint.ignored_media_types == {"application/octet-stream", "text/plain"}
    assert not endpoint.wants("pull", "application/vnd.oci.image.manifest.v1+json")
    assert not endpoint.wants("push", "application/octet-stream")
    assert endpoint.wants("delete", "")


def test_defaults_are_distributions(tmp_path: Path) -> None:
    (endpoint,) = notifications(tmp_path, {"endpoints": [{"name": "a", "url": "http://h/"}]}).endpoints
    assert (endpoint.timeout, endpoint.threshold, endpoint.backoff) == (1.0, DEFAULT_THRESHOLD, 1.0)
    assert notifications(tmp_path, None).endpoints == ()


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"endpoints": [{"name": "a"}]}, "notifications.endpoints[0].url"),
        ({"endpoints": [{"url": "http://h/"}]}, "notifications.endpoints[0].name"),
        ({"endpoints": [{"name": "a", "url": "ftp://h/"}]}, "notifications.endpoints[0].url"),
        ({"endpoints": [{"name": "a", "url": "http://h/", "timeout": "soon"}]}, "notifications.endpoints[0].timeout"),
        ({"endpoints": [{"name": "a", "url": "http://h/", "threshold": "5"}]}, "notifications.endpoints[0].threshold"),
        (
            {"endpoints": [{"name": "a", "url": "http://h/", "ignore": {"actions": ["pul"]}}]},
            "notifications.endpoints[0].ignore.actions[0]",
        ),
        ({"endpoints": [{"name": "a", "url": "http://h/", "urls": []}]}, "notifications.endpoints[0].urls"),
        ({"endpoints": [{"name": "a", "url": "http://h/"}] * 2}, "notifications.endpoints[1].name"),
        ({"endpoints": {"name": "a"}}, "notifications.endpoints"),
        (
            {"endpoints": [{"name": "a", "url": "http://h/", "headers": {"X-A\r\nX-B": ["v"]}}]},
            "notifications.endpoints[0].headers.X-A\r\nX-B",
        ),
        ({"events": {"includereferences": "yes"}}, "notifications.events.includereferences"),
    ],
)
def test_a_mistake_names_its_key(tmp_path: Path, section: object, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        notifications(tmp_path, section)
    assert raised.value.key == key


def test_the_section_is_no_longer_ignored(tmp_path: Path) -> None:
    config = make_config(tmp_path, "inmemory", REGISTRY_NOTIFICATIONS_EVENTS_INCLUDEREFERENCES="true")
    assert "notifications" not in config.ignored_sections
    assert Notifications.from_config(config).include_references
