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

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from registry.config import Config, ConfigError, duration_value
from registry.events.envelope import ACTIONS

ENDPOINT_KEYS = ("name", "url", "headers", "timeout", "threshold", "backoff", "ignoredmediatypes", "ignore", "disabled")
DEFAULT_TIMEOUT = 1.0
DEFAULT_THRESHOLD = 10
DEFAULT_BACKOFF = 1.0
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110's token: what a header name may be


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
        section = _mapping(config.raw.get("notifications"), "notifications", ("events", "endpoints"))
        events = _mapping(section.get("events"), "notifications.events", ("includereferences",))
        items = _list(section.get("endpoints"), "notifications.endpoints")
        endpoints = [_endpoint(item, f"notifications.endpoints[{index}]") for index, item in enumerate(items)]
        names = [endpoint.name for endpoint, _ in endpoints]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ConfigError(f"notifications.endpoints[{index}].name", f"{name!r} names two endpoints")
        include = _bool(events.get("includereferences"), "notifications.events.includereferences", False)
        return cls(tuple(endpoint for endpoint, disabled in endpoints if not disabled), include)


def _endpoint(item: Any, key: str) -> tuple[Endpoint, bool]:
    section = _mapping(item, key, ENDPOINT_KEYS)
    ignore = _mapping(section.get("ignore"), f"{key}.ignore", ("mediatypes", "actions"))
    actions = _strings(ignore.get("actions"), f"{key}.ignore.actions")
    for index, action in enumerate(actions):
        if action not in ACTIONS:
            raise ConfigError(f"{key}.ignore.actions[{index}]", f"expected one of {', '.join(ACTIONS)}, got {action!r}")
    media_types = _strings(section.get("ignoredmediatypes"), f"{key}.ignoredmediatypes")
    media_types += _strings(ignore.get("mediatypes"), f"{key}.ignore.mediatypes")
    endpoint = Endpoint(
        name=_text(section.get("name"), f"{key}.name"),
        url=_url(section.get("url"), f"{key}.url"),
        headers=_headers(section.get("headers"), f"{key}.headers"),
        timeout=_seconds(section.get("timeout"), f"{key}.timeout", DEFAULT_TIMEOUT),
        threshold=_threshold(section.get("threshold"), f"{key}.threshold"),
        backoff=_seconds(section.get("backoff"), f"{key}.backoff", DEFAULT_BACKOFF),
        ignored_media_types=frozenset(media_types),
        ignored_actions=frozenset(actions),
    )
    return endpoint, _bool(section.get("disabled"), f"{key}.disabled", False)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _mapping(value: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a mapping, got {_show(value)}")
    unknown = sorted(str(name) for name in value if name not in allowed)
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"unknown key, expected one of {', '.join(allowed)}")
    return value


def _list(value: Any, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(key, f"expected a list, got {_show(value)}")
    return value


def _strings(value: Any, key: str) -> list[str]:
    items = _list(value, key)
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{key}[{index}]", f"expected a non-empty string, got {_show(item)}")
    return items


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, f"expected a non-empty string, got {_show(value)}")
    return value


def _url(value: Any, key: str) -> str:
    url = _text(value, key)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(key, f"expected an http or https URL, got {url!r}")
    return url


def _headers(value: Any, key: str) -> tuple[tuple[str, str], ...]:
    """distribution's ``http.Header``: each name with a list of values (a lone string is taken as a list of one)."""
    headers: list[tuple[str, str]] = []
    for name, values in _mapping(value, key, tuple(value or ())).items():
        if not _TOKEN.fullmatch(str(name)):
            raise ConfigError(f"{key}.{name}", "expected a header name (letters, digits and !#$%&'*+-.^_`|~)")
        items = values if isinstance(values, list) else [values]
        if not all(isinstance(item, str) and "\r" not in item and "\n" not in item for item in items):
            raise ConfigError(f"{key}.{name}", f"expected a list of strings, got {_show(values)}")
        headers += [(str(name), item) for item in items]
    return tuple(headers)


def _seconds(value: Any, key: str, default: float) -> float:
    """A duration like ``500ms``; zero or absent takes distribution's default, as its ``defaults()`` does."""
    seconds = duration_value(value, key)
    return seconds or default


def _threshold(value: Any, key: str) -> int:
    if value is None:
        return DEFAULT_THRESHOLD
    if type(value) is not int:
        raise ConfigError(key, f"expected an integer, got {_show(value)}")
    return value if value > 0 else DEFAULT_THRESHOLD


def _bool(value: Any, key: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(key, f"expected true or false, got {_show(value)}")
    return value
