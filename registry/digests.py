"""Content digests (``algorithm:encoded``), as the OCI image-spec defines them."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from registry.errors import ErrorCode

DIGEST_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
ALGORITHMS = {
    "sha256": re.compile(r"[a-f0-9]{64}"),
    "sha512": re.compile(r"[a-f0-9]{128}"),
}


@dataclass(frozen=True, order=True)
class Digest:
    algorithm: str
    encoded: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"

    def hasher(self) -> Any:
        return hashlib.new(self.algorithm)

    @classmethod
    def parse(cls, value: str) -> Digest:
        """Parse and validate; raises DIGEST_INVALID (400) for a malformed or unsupported digest."""
        if not DIGEST_RE.fullmatch(value):
            raise ErrorCode.DIGEST_INVALID.error({"digest": value, "reason": "malformed digest"})
        algorithm, encoded = value.split(":", 1)
        pattern = ALGORITHMS.get(algorithm)
        if pattern is None:
            raise ErrorCode.DIGEST_INVALID.error({"digest": value, "reason": f"unsupported algorithm {algorithm}"})
        if not pattern.fullmatch(encoded):
            raise ErrorCode.DIGEST_INVALID.error({"digest": value, "reason": "malformed encoded part"})
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())


def check_algorithm(algorithm: str) -> str:
    """A digest algorithm the registry supports (``?digest-algorithm=``); else DIGEST_INVALID (400)."""
    if algorithm not in ALGORITHMS:
        raise ErrorCode.DIGEST_INVALID.error({"algorithm": algorithm, "reason": "unsupported digest algorithm"})
    return algorithm


def looks_like_digest(reference: str) -> bool:
    return ":" in reference
