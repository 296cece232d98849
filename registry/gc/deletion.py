"""The end of a blob's life: its bytes deleted after the transaction that deleted its row, then its tombstone.

Anyone may finish a deletion (both steps are idempotent): the collector right after its commit, any worker meeting a
stale tombstone, an upload of the same digest that found one its collector left behind.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from registry.content import paths
from registry.db import reviews
from registry.db.engine import Database
from registry.digests import Digest
from storage_backends import PathNotFound, StorageBackend

# a tombstone older than this belongs to a collector that died between deleting a blob's row and its bytes:
# whoever meets it finishes the deletion; a younger one is waited for
TOMBSTONE_STALE = timedelta(seconds=60)
TOMBSTONE_POLL = 0.05


async def finish_deletion(backend: StorageBackend, db: Database, digests: list[str]) -> None:
    """Delete collected blobs' bytes, then their tombstones (both idempotent: any worker may finish any deletion).
    The tombstones' end need not be flushed: a later durable commit flushes it, and one lost is finished again."""
    for digest in digests:
        with contextlib.suppress(PathNotFound):
            await backend.delete(paths.blob_dir(Digest.parse(digest)))
    if digests:
        await db.write(lambda s: reviews.end_tombstones(s, digests), durable=False)
