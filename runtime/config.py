"""The user's settings file: registry credentials from `runtime login`, insecure registries, the OCI runtime.

$RUNTIME_CONFIG, else ~/.config/runtime/config.json, mode 0600:
{"auths": {"registry.example.com": {"auth": "<base64 user:password>"}},
 "insecure_registries": ["10.0.0.5:5000"],        plain HTTP besides loopback addresses
 "oci_runtime": "runc",                            or "crun", or a path; default: whichever is installed
 "unpack": {"header": "1m", "layer": "64g",        bounds on what one layer may make the unpacker read or write
            "image": "256g", "entries": 1000000}}  (the defaults shown; sizes in bytes or with k, m, g)
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import UsageError
from .store import write_private
from .tarstream import Limits

SIZE_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str | int) -> int:
    """``64m``, ``1g``, ``4096`` (bytes); ValueError for anything else."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    value = str(text).strip().lower()
    unit = value[-1] if value and value[-1] in SIZE_UNITS else "b"
    number = float(value[:-1] if value and value[-1] in SIZE_UNITS else value)
    if not 0 <= number < float("inf"):
        raise ValueError(f"invalid size {text!r}")
    return int(number * SIZE_UNITS[unit])


def parse_limits(doc: Any) -> Limits:
    if not isinstance(doc, dict) or set(doc) - {f.name for f in fields(Limits)}:
        raise ValueError(f"expected an object with the keys {', '.join(f.name for f in fields(Limits))}")
    return Limits(**{key: parse_size(value) for key, value in doc.items()})


def config_path() -> Path:
    env = os.environ.get("RUNTIME_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "runtime" / "config.json"


@dataclass
class Settings:
    path: Path
    auths: dict[str, dict[str, str]] = field(default_factory=dict)
    insecure_registries: list[str] = field(default_factory=list)
    oci_runtime: str = ""
    unpack: Limits = field(default_factory=Limits)

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        path = path or config_path()
        try:
            doc: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read {path}: {exc}") from exc
        try:
            return cls(
                path,
                auths=dict(doc.get("auths") or {}),
                insecure_registries=list(doc.get("insecure_registries") or []),
                oci_runtime=str(doc.get("oci_runtime") or ""),
                unpack=parse_limits(doc.get("unpack") or {}),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise UsageError(f"{path}: {exc}") from exc

    def save(self) -> None:
        """Write the file with mode 0600 (it holds passwords), atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        doc = {
            "auths": self.auths,
            "insecure_registries": self.insecure_registries,
            "oci_runtime": self.oci_runtime,
            **({"unpack": asdict(self.unpack)} if self.unpack != Limits() else {}),
        }
        write_private(self.path, (json.dumps(doc, indent=2) + "\n").encode())

    def credentials(self, registry: str) -> tuple[str, str] | None:
        entry = self.auths.get(registry)
        if not entry or "auth" not in entry:
            return None
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        return user, password

    def set_credentials(self, registry: str, user: str, password: str) -> None:
        self.auths[registry] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}

    def forget(self, registry: str) -> bool:
        return self.auths.pop(registry, None) is not None
