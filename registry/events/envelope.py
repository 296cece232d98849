"""distribution's notification events and the envelope that carries them (``notifications/event.go``, version 1).

    {"events": [{"id", "timestamp", "action",
                 "target": {"mediaType", "size", "digest", "length", "repository", "fromRepository", "url", "tag",
                            "references"},
                 "request": {"id", "addr", "host", "method", "useragent"},
                 "actor": {"name"},
                 "source": {"addr", "instanceID"}}]}

Empty fields are left out, as Go's ``omitempty`` leaves them (``request.id``, ``method`` and ``useragent`` are always
there when there is a request).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ENVELOPE_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
PULL, PUSH, MOUNT, DELETE = "pull", "push", "mount", "delete"
ACTIONS = (PULL, PUSH, MOUNT, DELETE)
BLOB_MEDIA_TYPE = "application/octet-stream"  # what distribution reports for a blob (it does not know better)


@dataclass(frozen=True)
class Target:
    repository: str
    digest: str = ""
    media_type: str = ""
    size: int = 0
    url: str = ""
    tag: str = ""
    from_repository: str = ""
    references: Sequence[dict[str, Any]] = ()

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"mediaType": self.media_type, "size": self.size, "digest": self.digest}
        found |= {"length": self.size, "repository": self.repository, "fromRepository": self.from_repository}
        found |= {"url": self.url, "tag": self.tag, "references": list(self.references)}
        return {key: value for key, value in found.items() if value}


@dataclass(frozen=True)
class RequestRecord:
    id: str
    addr: str = ""
    host: str = ""
    method: str = ""
    useragent: str = ""

    def as_json(self) -> dict[str, str]:
        found = {"id": self.id, "addr": self.addr, "host": self.host, "method": self.method}
        return {key: value for key, value in found.items() if value} | {"useragent": self.useragent}


@dataclass(frozen=True)
class Source:
    """The registry node that generated the event: its host name and port, and an id new at every start."""

    addr: str
    instance_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def as_json(self) -> dict[str, str]:
        return {"addr": self.addr, "instanceID": self.instance_id}


@dataclass(frozen=True)
class Event:
    action: str
    target: Target
    source: Source
    request: RequestRecord | None = None  # None: no request caused it (the garbage collector)
    actor: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"id": self.id, "timestamp": timestamp(self.timestamp), "action": self.action}
        found["target"] = self.target.as_json()
        if self.request is not None:
            found["request"] = self.request.as_json()
        found["actor"] = {"name": self.actor} if self.actor else {}
        found["source"] = self.source.as_json()
        return found

    def encoded(self) -> str:
        return json.dumps(self.as_json(), separators=(",", ":"), ensure_ascii=False)


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, as Go's ``time.Time`` marshals (``2006-01-02T15:04:05.999999Z``)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def envelope(encoded_events: Sequence[str]) -> bytes:
    """The body of one notification: events already encoded (as the outbox keeps them) in one envelope."""
    return ('{"events":[' + ",".join(encoded_events) + "]}").encode()
