"""The ``ui`` section (ours): where the web UI is served, or whether it is at all.

ui:
  enabled: true        # false: no UI route is registered
  path: /              # the UI's root, under http.prefix; never /v2 or below it (the API's)
  sessionlifetime: 12h # how long a sign-in lasts
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from registry.settings import Bool, Duration, Section, Str

if TYPE_CHECKING:
    from registry.config import Config

DEFAULT_LIFETIME = 12 * 3600.0


def _path(path: str) -> str:
    if not path.startswith("/") or re.search(r"[\s?#%{}]", path):
        raise ValueError(f"expected a URL path like /ui/, got {path!r}")
    segments = [segment for segment in path.split("/") if segment]
    if segments[:1] == ["v2"]:
        raise ValueError(f"the UI cannot be served below /v2, the API's, got {path!r}")
    return "/" + "".join(f"{segment}/" for segment in segments)


UI = Section(
    {"enabled": Bool(True), "path": Str("/", check=_path), "sessionlifetime": Duration(DEFAULT_LIFETIME)},
    strict=True,
)


@dataclass(frozen=True)
class UiSettings:
    enabled: bool = True
    path: str = "/"  # always ends with "/"
    session_lifetime: float = DEFAULT_LIFETIME

    @classmethod
    def from_config(cls, config: Config) -> UiSettings:
        values = UI.read(config.raw.get("ui"), "ui")
        lifetime = values["sessionlifetime"] or DEFAULT_LIFETIME
        return cls(values["enabled"], values["path"], lifetime)
