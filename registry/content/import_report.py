"""What ``registry import`` found: counts, what it skipped and why, and a progress line on stderr while it runs."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

# why an item was not imported (or was imported incompletely), as the summary words it
DANGLING_LINK = "dangling blob link (no blob data)"
MISSING_MANIFEST = "manifest revision without its bytes"
CORRUPT_MANIFEST = "corrupt manifest (bytes do not match the digest, or not a manifest)"
UNSUPPORTED_MANIFEST = "unsupported manifest (schema 1)"
MISSING_BLOB = "manifest names a blob missing from storage"
MISSING_CHILD = "index names a manifest the repository lacks (index kept)"
DANGLING_TAG = "tag names a manifest that was not imported"
INVALID_NAME = "invalid repository name or tag"

SHOWN_ITEMS = 50  # the skipped items listed one by one; the rest are counted


@dataclass
class Summary:
    repositories: int = 0
    manifests: int = 0
    tags: int = 0
    blob_links: int = 0
    blobs: int = 0  # at the end: what the database holds
    bytes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def skip(self, reason: str, item: str) -> None:
        self.skipped[reason] += 1
        if len(self.examples) < SHOWN_ITEMS:
            self.examples.append(f"{item}: {reason}")

    def counts(self) -> str:
        return (
            f"{self.repositories} repositories, {self.manifests} manifests, {self.tags} tags, "
            f"{self.blob_links} blob links"
        )

    def lines(self, dry_run: bool) -> list[str]:
        verb = "would import" if dry_run else "imported"
        out = [f"{verb}: {self.counts()}; {self.blobs} blobs ({self.bytes} bytes)"]
        if not self.skipped:
            return [*out, "skipped: nothing"]
        out.append("skipped: " + "; ".join(f"{count} {reason}" for reason, count in sorted(self.skipped.items())))
        out += [f"  {example}" for example in self.examples]
        hidden = sum(self.skipped.values()) - len(self.examples)
        return [*out, f"  ... and {hidden} more"] if hidden > 0 else out


class Progress:
    """One line on stderr, rewritten in place on a terminal (printed every ``every`` seconds otherwise)."""

    def __init__(self, summary: Summary, stream: TextIO = sys.stderr, every: float = 1.0) -> None:
        self.summary = summary
        self.stream = stream
        self.tty = stream.isatty()
        self.every = every if self.tty else max(every, 5.0)
        self.last = 0.0
        self.current = ""

    def repository(self, name: str) -> None:
        self.current = name
        self.tick()

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        line = f"import: {self.summary.counts()}" + (f" [{self.current}]" if self.current else "")
        self.stream.write(f"\r\x1b[K{line}" if self.tty else f"{line}\n")
        self.stream.flush()

    def done(self) -> None:
        self.current = ""
        self.tick(force=True)
        if self.tty:
            self.stream.write("\n")
