"""What every handler reaches through ``request.context``: the store, the settings, and the daemon's own state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import Settings
from ..store import Store

if TYPE_CHECKING:
    from .supervisor import Supervisor


@dataclass
class Context:
    store: Store
    settings: Settings
    started: float = 0.0
    supervisor: Supervisor | None = None  # the containers' exits and stdin (main.py makes it)
