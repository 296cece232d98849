"""A soak: 20 docker-style pushers sharing layers move and delete their tags while the collector runs with no delay
and untagged manifests collected at once. Every push acknowledged and still tagged pulls back digest-verified;
at the end no unreferenced blob is left in storage and no referenced one is missing.

The pushers run a minute on SQLite and 20 s on PostgreSQL (a PostgreSQL write costs a round trip: fewer pushes a
second); ``GC_SOAK_SECONDS`` sets both.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import select, update

from registry.db.models import blobs, gc_blob_reviews, gc_manifest_reviews, manifest_blobs, utcnow
from registry.gc.collector import Report
from tests.api_helpers import OCI_MANIFEST, client_on, digest_of, image_manifest, put_manifest
from tests.conftest import make_config
from tests.gc.test_collector import collector, services, stored_bytes

PUSHERS = 20
SHARED_LAYERS = [f"shared layer {i}".encode() * 2000 for i in range(40)]  # often all unreferenced, then back
SOAK = {
    "REGISTRY_STORAGE_GC_DELAY": "0s",
    "REGISTRY_STORAGE_GC_LEASE": "5s",  # a push's HEAD-to-manifest gap, with room to spare
    "REGISTRY_STORAGE_GC_UNTAGGED": "0s",
    "REGISTRY_STORAGE_GC_ENABLED": "false",  # the test runs the collector itself, without pause
}


@dataclass
class Pusher:
    repo: str
    rng: random.Random
    tags: dict[str, str] = field(default_factory=dict)  # what this pusher acknowledged and has not moved or deleted
    pushes: int = 0
    refused: int = 0

    async def push(self, client: httpx.AsyncClient, tag: str) -> None:
        layers = self.rng.sample(SHARED_LAYERS, 2) + [os.urandom(512)]
        config = f'{{"pusher": "{self.repo}", "n": {self.pushes}}}'.encode()
        for blob in (*layers, config):
            head = await client.head(f"/v2/{self.repo}/blobs/{digest_of(blob)}")
            if head.status_code == 404:  # docker uploads what the registry does not have
                response = await client.post(
                    f"/v2/{self.repo}/blobs/uploads/", params={"digest": digest_of(blob)}, content=blob
                )
                assert response.status_code == 201, response.text
        body = image_manifest(config, layers)
        response = await put_manifest(client, self.repo, tag, body, OCI_MANIFEST)
        if response.status_code == 400:  # a blob HEADed before the collector took it: docker pushes again
            assert response.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN", response.text
            self.refused += 1
            return
        assert response.status_code == 201, response.text
        self.tags[tag] = digest_of(body)
        self.pushes += 1

    async def delete(self, client: httpx.AsyncClient) -> None:
        tag = self.rng.choice(sorted(self.tags))
        by_digest = self.rng.random() < 0.5
        reference = self.tags[tag] if by_digest else tag
        assert (await client.delete(f"/v2/{self.repo}/manifests/{reference}")).status_code == 202
        for name in [t for t, d in self.tags.items() if d == self.tags[tag]] if by_digest else [tag]:
            del self.tags[name]

    async def run(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.tags and self.rng.random() < 0.3:
                await self.delete(client)
            else:
                await self.push(client, f"t{self.rng.randrange(3)}")


async def verify_pull(client: httpx.AsyncClient, repo: str, tag: str, digest: str) -> None:
    manifest = await client.get(f"/v2/{repo}/manifests/{tag}", headers={"accept": OCI_MANIFEST})
    assert manifest.status_code == 200, (repo, tag, manifest.text)
    assert digest_of(manifest.content) == digest
    doc = manifest.json()
    for descriptor in [doc["config"], *doc["layers"]]:
        blob = await client.get(f"/v2/{repo}/blobs/{descriptor['digest']}")
        assert blob.status_code == 200, (repo, descriptor)
        assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == descriptor["digest"]


async def collect_continuously(client: httpx.AsyncClient, stop: asyncio.Event) -> Report:
    """Pass after pass while the pushers run; what all of them collected."""
    total = Report()
    while not stop.is_set():
        report = await collector(client).run_once()
        total.manifests += report.manifests
        total.blobs += report.blobs
        total.reviews += report.reviews
        await asyncio.sleep(0)
    return total


async def test_pushers_sharing_layers_beside_a_collector_lose_nothing_and_leave_nothing(
    tmp_path: Path, database_url: str
) -> None:
    seconds = float(os.environ.get("GC_SOAK_SECONDS", "60" if database_url.startswith("sqlite") else "20"))
    async with client_on(make_config(tmp_path, "filesystem", REGISTRY_DATABASE_URL=database_url, **SOAK)) as client:
        pushers = [Pusher(f"soak/p{i}", random.Random(i)) for i in range(PUSHERS)]
        stop = asyncio.Event()
        running = [asyncio.create_task(p.run(client, stop)) for p in pushers]
        gc_task = asyncio.create_task(collect_continuously(client, stop))
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*running)
        collected = await gc_task

        pushes, refused = sum(p.pushes for p in pushers), sum(p.refused for p in pushers)
        print(f"{pushes} pushes ({refused} refused), collected {collected.summary()}")
        assert pushes > PUSHERS and collected.manifests and collected.blobs, "the soak exercised nothing"
        for pusher in pushers:
            for tag, digest in pusher.tags.items():
                await verify_pull(client, pusher.repo, tag, digest)

        # quiescence, as if the lease's time passed: leases out, postponed reviews due, everything reviewed again
        db = services(client).db
        await db.write(lambda s: s.execute(update(blobs).values(protected_until=None)))
        for queue in (gc_blob_reviews, gc_manifest_reviews):
            await db.write(lambda s, q=queue: s.execute(update(q).values(review_after=utcnow(), claimed_by=None)))
        await collector(client).queue_everything()
        await collector(client).run_once()
        async with db.read() as session:
            named = set((await session.scalars(select(manifest_blobs.c.blob_digest).distinct())).all())
        assert await stored_bytes(client) == named
        for pusher in pushers:
            for tag, digest in pusher.tags.items():
                await verify_pull(client, pusher.repo, tag, digest)
