"""What every handler reaches through ``request.context``: the store, the settings, and the daemon's own state."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import Settings
from ..store import Store


@dataclass
class Context:
    store: Store
    settings: Settings
    started: float = 0.0
    extras: dict[str, object] = field(default_factory=dict)
