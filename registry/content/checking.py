"""``registry check``: does storage hold what the database claims? (zot's scrub is the model.)

Every blob with a row is in storage with its size (``deep``: and hashes to its digest); every manifest's bytes
hash to its digest; every tag names a manifest of its own repository. Blob files no row names are orphans: counted,
and left to the collector. ``repair`` unlinks each missing or damaged blob from every repository (a damaged file is
deleted too): a HEAD then answers 404, so the next push uploads it again instead of skipping it, and the manifests
that name it are listed, to be pushed again. Pages of ``batch`` rows, so memory stays flat whatever the size.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from registry.content import paths
from registry.db import check_queries as q
from registry.db.engine import Database
from registry.digests import Digest
from storage_backends.base import StorageBackend
from storage_backends.errors import PathNotFound

_T = TypeVar("_T")
SHOWN = 50
# ``deep``: a chunk this long or longer is hashed in a thread (hashlib lets go of the GIL), so that the 32 blobs
# checked at once hash on every core and the reads go on meanwhile: 1,030 MiB/s hashed on the event loop, 1,400 in
# threads, for 768 MiB of 32 MiB blobs from the page cache on two cores. A shorter one costs less than the hop.
HASHED_IN_A_THREAD = 64 * 1024
MISSING, WRONG_SIZE, CORRUPT = "missing from storage", "size differs from the database's", "bytes do not hash to it"


@dataclass
class CheckReport:
    blobs: int = 0
    manifests: int = 0
    bad_blobs: dict[str, int] = field(default_factory=dict)  # reason: count
    bad_manifests: int = 0
    stray_tags: int = 0
    orphans: int = 0
    orphan_bytes: int = 0
    unlinked: int = 0
    needing: int = 0
    examples: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        if len(self.examples) < SHOWN:
            self.examples.append(line)

    @property
    def problems(self) -> int:
        return sum(self.bad_blobs.values()) + self.bad_manifests + self.stray_tags

    def lines(self, repair: bool) -> list[str]:
        bad = "; ".join(f"{count} {reason}" for reason, count in sorted(self.bad_blobs.items())) or "none"
        out = [
            f"checked: {self.blobs} blobs, {self.manifests} manifests",
            f"blobs: {bad}",
            f"manifests whose bytes do not hash to their digest: {self.bad_manifests}",
            f"tags naming another repository's manifest: {self.stray_tags}",
            f"orphans (in storage, in no row; left to the collector): {self.orphans} ({self.orphan_bytes} bytes)",
        ]
        if repair:
            out.append(f"repaired: {self.unlinked} blob links dropped; {self.needing} manifests need a push again")
        return out + [f"  {example}" for example in self.examples]


class Checker:
    def __init__(
        self, backend: StorageBackend, db: Database, *, deep: bool = False, repair: bool = False, batch: int = 500
    ) -> None:
        self.backend, self.db, self.deep, self.repair, self.batch = backend, db, deep, repair, batch
        self.report = CheckReport()
        self._calls = asyncio.Semaphore(32)

    async def run(self) -> CheckReport:
        await self._blobs()
        await self._manifests()
        async with self.db.read() as session:
            stray = await q.stray_tags(session)
        self.report.stray_tags = len(stray)
        for tag in stray:
            self.report.note(f"tag {tag}: names another repository's manifest")
        await self._orphans()
        return self.report

    async def _call(self, work: Awaitable[_T]) -> _T:
        async with self._calls:
            return await work

    async def _blobs(self) -> None:
        after = ""
        while True:
            async with self.db.read() as session:
                page = await q.blobs_page(session, after, self.batch)
            if not page:
                return
            after = page[-1].digest
            verdicts = await asyncio.gather(*(self._call(self._verify(row.digest, row.size)) for row in page))
            self.report.blobs += len(page)
            bad = {row.digest: reason for row, reason in zip(page, verdicts, strict=True) if reason is not None}
            for digest, reason in bad.items():
                self.report.bad_blobs[reason] = self.report.bad_blobs.get(reason, 0) + 1
                self.report.note(f"blob {digest}: {reason}")
            if bad and self.repair:
                await self._repair(bad)

    async def _verify(self, digest: str, size: int) -> str | None:
        parsed = Digest.parse(digest)
        try:
            info = await self.backend.stat(paths.blob_path(parsed))
        except PathNotFound:
            return MISSING
        if info.size != size:
            return WRONG_SIZE
        if self.deep:
            hasher = parsed.hasher()
            async for chunk in self.backend.reader(paths.blob_path(parsed)):
                if len(chunk) >= HASHED_IN_A_THREAD:
                    await asyncio.to_thread(hasher.update, chunk)
                else:
                    hasher.update(chunk)
            return None if hasher.hexdigest() == parsed.encoded else CORRUPT
        return None

    async def _repair(self, bad: dict[str, str]) -> None:
        for digest, reason in bad.items():
            if reason != MISSING:  # damaged bytes go, or an upload of the digest would keep them (it never rewrites)
                with contextlib.suppress(PathNotFound):
                    await self.backend.delete(paths.blob_path(Digest.parse(digest)))
        self.report.unlinked += await self.db.write(lambda session: q.drop_links(session, list(bad)))
        async with self.db.read() as session:
            needing = await q.manifests_needing(session, bad)
        self.report.needing += len(needing)
        for manifest in needing:
            self.report.note(f"manifest {manifest}: names a blob that is gone; push it again")

    async def _manifests(self) -> None:
        after = 0
        while True:
            async with self.db.read() as session:
                page = await q.manifests_page(session, after, self.batch)
            if not page:
                return
            after = page[-1].id
            self.report.manifests += len(page)
            for row in page:
                digest = Digest.parse(row.digest)
                if Digest.of(row.payload, digest.algorithm) != digest:
                    self.report.bad_manifests += 1
                    self.report.note(f"manifest {row.name}@{row.digest}: its bytes do not hash to its digest")

    async def _orphans(self) -> None:
        """Blob files no row names, one two-hex-digit directory at a time."""
        for algorithm in await _children(self.backend, paths.blobs_root()):
            for prefix in await _children(self.backend, algorithm):
                files: dict[str, int] = {}
                with contextlib.suppress(PathNotFound):
                    async for info in self.backend.walk(prefix):
                        digest = paths.digest_of_blob_path(info.path)
                        if digest is not None:
                            files[str(digest)] = info.size
                async with self.db.read() as session:
                    known = await q.known_blobs(session, files)
                orphans = [size for digest, size in files.items() if digest not in known]
                self.report.orphans += len(orphans)
                self.report.orphan_bytes += sum(orphans)


async def _children(backend: StorageBackend, directory: str) -> list[Any]:
    try:
        return await backend.list(directory)
    except PathNotFound:
        return []
