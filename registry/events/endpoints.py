"""distribution's ``notifications`` section: the endpoints events are posted to, and whether they list references.

notifications:
  events:
    includereferences: true        # a manifest's event lists the descriptors it references
  endpoints:
    - name: alistener              # required, unique: the outbox keeps each endpoint's rows by this name
      url: https://listener.example.com/event
      headers: {Authorization: [Bearer <token>]}
      timeout: 1s                  # per request (distribution's default)
      threshold: 10                # failures in a row before backing off
      backoff: 1s                  # the first back-off; it doubles after each further failure, up to a cap
      ignoredmediatypes: [application/octet-stream]
      ignore: {mediatypes: [...], actions: [pull]}
      disabled: false
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry.events.envelope import ACTIONS
from registry.settings import Bool, ConfigError, Duration, Int, Items, Section, Strings, Text
from registry.settings_http import Headers, Url

if TYPE_CHECKING:
    from registry.config import Config

DEFAULT_TIMEOUT = 1.0
DEFAULT_THRESHOLD = 10
DEFAULT_BACKOFF = 1.0


def _action(action: str) -> str:
    if action not in ACTIONS:
        raise ValueError(f"expected one of {', '.join(ACTIONS)}, got {action!r}")
    return action


def _threshold(threshold: int) -> int:
    return threshold if threshold > 0 else DEFAULT_THRESHOLD  # as distribution's defaults()


ENDPOINT = Section(  # zero or absent durations and threshold take distribution's defaults, as its defaults() does
    {
        **{"name": Text(required=True), "url": Url(required=True), "headers": Headers(tokens=True)},
        "timeout": Duration(DEFAULT_TIMEOUT, zero=DEFAULT_TIMEOUT),
        "threshold": Int(DEFAULT_THRESHOLD, check=_threshold),
        "backoff": Duration(DEFAULT_BACKOFF, zero=DEFAULT_BACKOFF),
        "ignoredmediatypes": Strings([]),
        "ignore": Section({"mediatypes": Strings([]), "actions": Strings([], each=_action)}, strict=True),
        "disabled": Bool(False),
    },
    strict=True,
)
NOTIFICATIONS = Section(
    {"events": Section({"includereferences": Bool(False)}, strict=True), "endpoints": Items(ENDPOINT)}, strict=True
)


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    threshold: int = DEFAULT_THRESHOLD
    backoff: float = DEFAULT_BACKOFF
    ignored_media_types: frozenset[str] = frozenset()
    ignored_actions: frozenset[str] = frozenset()

    def wants(self, action: str, media_type: str) -> bool:
        return action not in self.ignored_actions and (not media_type or media_type not in self.ignored_media_types)


@dataclass(frozen=True)
class Notifications:
    endpoints: tuple[Endpoint, ...] = ()  # the enabled ones
    include_references: bool = False

    @classmethod
    def from_config(cls, config: Config) -> Notifications:
        section = NOTIFICATIONS.read(config.raw.get("notifications"), "notifications")
        names = [endpoint["name"] for endpoint in section["endpoints"]]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ConfigError(f"notifications.endpoints[{index}].name", f"{name!r} names two endpoints")
        endpoints = tuple(_endpoint(values) for values in section["endpoints"] if not values["disabled"])
        return cls(endpoints, section["events"]["includereferences"])


def _endpoint(values: dict[str, Any]) -> Endpoint:
    ignore = values["ignore"]
    return Endpoint(
        name=values["name"],
        url=values["url"],
        headers=tuple((name, item) for name, items in (values["headers"] or {}).items() for item in items),
        timeout=values["timeout"],
        threshold=values["threshold"],
        backoff=values["backoff"],
        ignored_media_types=frozenset([*values["ignoredmediatypes"], *ignore["mediatypes"]]),
        ignored_actions=frozenset(ignore["actions"]),
    )
