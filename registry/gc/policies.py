"""What may be collected in a repository beyond unreferenced blobs: the retention policies (skeleton: the defaults
from ``storage.gc`` apply to every repository until the ``retention`` section is read here)."""

from __future__ import annotations

from dataclasses import dataclass

from registry.config import Config


@dataclass(frozen=True)
class Policies:
    default_untagged: float | None = None

    @classmethod
    def from_config(cls, config: Config) -> Policies:
        return cls(default_untagged=config.storage.gc.untagged)

    def untagged_after(self, repo: str) -> float | None:
        """Seconds after a manifest lost its last tag (or was pushed untagged) that it may be collected; None: never.
        An index's children and the referrers of a kept manifest are never collected this way."""
        return self.default_untagged

    def collect_referrers(self, repo: str) -> bool:
        """Whether untagged referrers of a manifest that is kept may be collected too (by default they follow their
        subject: kept while it is)."""
        return False
