"""Which children an index pushed must name that the repository already holds: distribution 3's
``validation.manifests.indexes`` keys, declared here and read by ``ManifestStore``.

    validation:
      manifests:
        indexes:
          platforms: all              all: every child must be pushed first (the default); none: no child must be;
                                      list: only the children whose platform is in platformlist
          platformlist:
            - architecture: amd64
              os: linux

A child pushed later is recorded as the index's reference when it arrives (``registry.db.late_references``), so the
collector keeps it while the index lives; until then a GET of it is MANIFEST_UNKNOWN. The blobs an image manifest
names (config, layers) are always required."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from registry.manifests import Descriptor
from registry.settings import IGNORED, Choice, ConfigError, Items, Section, Text

if TYPE_CHECKING:
    from registry.config import Config

ALL, NONE, LIST = "all", "none", "list"
PLATFORM = Section({"architecture": Text(required=True), "os": Text(required=True)}, strict=True)
INDEXES = Section({"platforms": Choice(ALL, NONE, LIST, default=ALL), "platformlist": Items(PLATFORM)}, strict=True)
VALIDATION = Section(  # distribution's; its other keys (enabled, disabled, manifests.urls) are reported as ignored
    {"manifests": Section({"indexes": INDEXES, "urls": IGNORED}), "enabled": IGNORED, "disabled": IGNORED}
)


@dataclass(frozen=True)
class IndexValidation:
    platforms: str = ALL
    platform_list: tuple[tuple[str, str], ...] = ()  # (os, architecture), with ``list``

    @classmethod
    def from_config(cls, config: Config) -> IndexValidation:
        values = VALIDATION.read(config.raw.get("validation"), "validation")["manifests"]["indexes"]
        listed = tuple((platform["os"], platform["architecture"]) for platform in values["platformlist"])
        if values["platforms"] == LIST and not listed:
            key = "validation.manifests.indexes.platformlist"
            raise ConfigError(key, "expected at least one platform (architecture and os) with platforms: list")
        return cls(values["platforms"], listed if values["platforms"] == LIST else ())

    @property
    def sparse(self) -> bool:
        """Whether an index may be pushed before some of its children."""
        return self.platforms != ALL

    def requires(self, child: Descriptor) -> bool:
        """Whether ``child`` must be in the repository before an index naming it is accepted."""
        if self.platforms == ALL:
            return True
        platform = child.platform or {}
        return (platform.get("os"), platform.get("architecture")) in self.platform_list
