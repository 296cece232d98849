"""Image references, normalised the way docker does: `busybox` is `docker.io/library/busybox:latest`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import UsageError

DEFAULT_REGISTRY = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
TAG = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What goes after /manifests/: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag or 'latest'}"

    @property
    def endpoint(self) -> str:
        return DOCKER_HUB_ENDPOINT if self.registry == DEFAULT_REGISTRY else self.registry

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, tag=tag)


def parse(text: str) -> Reference:
    """Parse `[host[:port]/]path[:tag][@sha256:hex]`; raise UsageError with the reason when it is not one."""
    rest, _, digest_text = text.partition("@")
    digest = digest_text or None
    if digest is not None and not DIGEST.match(digest):
        raise UsageError(f"invalid reference {text!r}: digest must be sha256:<64 hex>")
    tag = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not TAG.match(tag):
            raise UsageError(f"invalid reference {text!r}: bad tag {tag!r}")
    parts = rest.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry, path = parts[0], parts[1:]
    else:
        registry, path = DEFAULT_REGISTRY, parts
    if registry == DEFAULT_REGISTRY and len(path) == 1:
        path = ["library", *path]
    if not path or not all(COMPONENT.match(p) for p in path):
        raise UsageError(f"invalid reference {text!r}: repository names are lowercase [a-z0-9._-] separated by /")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(registry, "/".join(path), tag=tag, digest=digest)
