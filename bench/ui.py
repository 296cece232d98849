"""The web UI's repository list over 10,000 repositories, server side: ``.venv/bin/python bench/ui.py [--repos N]
[--rounds R] [--database-url URL]``.

The repositories (each with two image manifests, three tags and four blobs) are written straight into a fresh
database (SQLite in a temp dir, or the PostgreSQL URL given) and analyzed (as autovacuum would), then the app runs
in this process and each page is requested through ``httpx.ASGITransport`` (no socket: the time is the app's,
rendering included), ``R`` times after two warm-up requests; the table has the median and the 95th percentile. A
token-service user whose rules let it pull one team's repositories is signed in for the filtered rows. The issue's
target: under 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import yaml
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry.app import create_app  # noqa: E402
from registry.config import load_config  # noqa: E402
from registry.db import migrate  # noqa: E402
from registry.db.engine import Database  # noqa: E402
from registry.db.models import (  # noqa: E402
    blobs,
    manifest_blobs,
    manifests,
    repositories,
    repository_blobs,
    tags,
)

TARGET_MS = 200.0
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
USERS = {"all": "all-pw", "team": "team-pw"}


def names(count: int) -> list[str]:
    return [f"team{i // 1000:03d}/app{i % 1000:03d}" for i in range(count)]


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def rows(count: int) -> dict[Any, list[dict[str, Any]]]:
    now = datetime.now(UTC)
    tables: dict[Any, list[dict[str, Any]]] = {t: [] for t in (repositories, blobs, repository_blobs, manifests)}
    tables |= {manifest_blobs: [], tags: []}
    manifest_id = 0
    for repo_id, name in enumerate(names(count), start=1):
        tables[repositories].append({"id": repo_id, "name": name, "created_at": now})
        for image in range(2):
            manifest_id += 1
            held = [_digest(f"{name} {image} {part}") for part in ("config", "layer")]
            for size, digest in zip((700, 3_000_000 + repo_id), held, strict=True):
                tables[blobs].append({"digest": digest, "size": size, "created_at": now})
                tables[repository_blobs].append({"repository_id": repo_id, "blob_digest": digest, "created_at": now})
                tables[manifest_blobs].append({"manifest_id": manifest_id, "blob_digest": digest})
            payload = f'{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","n":"{name} {image}"}}'.encode()
            pushed = now - timedelta(minutes=repo_id + image)
            tables[manifests].append(
                {
                    **{"id": manifest_id, "repository_id": repo_id, "digest": _digest(payload.decode())},
                    **{"media_type": OCI_MANIFEST, "size": len(payload), "payload": payload, "created_at": pushed},
                }
            )
        for tag, manifest in (("latest", manifest_id), ("v1", manifest_id - 1), ("v2", manifest_id)):
            tables[tags].append({"repository_id": repo_id, "name": tag, "manifest_id": manifest, "updated_at": now})
    return tables


async def fill(url: str, count: int) -> None:
    database = Database(url)
    try:
        await migrate.upgrade(database)
    finally:
        await database.dispose()
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for table, values in rows(count).items():
                for start in range(0, len(values), 5000):
                    await connection.execute(insert(table), values[start : start + 5000])
        async with engine.connect() as connection:  # the statistics a database in use has (autovacuum's)
            await connection.execute(text("ANALYZE"))
            await connection.commit()
    finally:
        await engine.dispose()


def config(tmp: Path, url: str) -> Any:
    htpasswd = tmp / "htpasswd"
    htpasswd.write_text(
        "".join(f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode()}\n" for u, p in USERS.items())
    )
    rules = [
        {"users": ["all"], "repositories": ["*"], "actions": ["pull"]},  # sees every repository: no filter
        {"users": ["team"], "repositories": ["team004/*"], "actions": ["pull"]},
    ]
    server = {"key": str(tmp / "token.pem"), "htpasswd": str(htpasswd), "access": rules}
    data = {
        "version": "0.1",
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"inmemory": {}, "gc": {"enabled": False}},
        "database": {"url": url},
        "auth": {"token": {"service": "bench.ui", "issuer": "bench", "server": server}},
    }
    path = tmp / "config.yml"
    path.write_text(yaml.safe_dump(data))
    return load_config(str(path), {})


async def sign_in(client: httpx.AsyncClient, user: str) -> None:
    form = await client.get("/login")
    csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    fields = {"username": user, "password": USERS[user], "csrf": csrf, "next": "/"}
    signed = await client.post("/login", data=fields)
    assert signed.status_code == 303, signed.text


async def timed(client: httpx.AsyncClient, path: str, rounds: int, expect: str) -> list[float]:
    for _ in range(2):
        await client.get(path)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = await client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200 and expect in response.text, (path, response.status_code)
    return samples


def cases(count: int) -> list[tuple[str, str, str, str]]:
    """(label, path, a repository the page must show, the user signed in); ``count`` is at least 5,000."""
    listed = names(count)
    deep = listed[count * 85 // 100]
    return [
        ("first page, n=50", "/", listed[0], "all"),
        ("a page deep in, n=50", f"/?last={deep}", listed[count * 85 // 100 + 1], "all"),
        ("search 'app42', n=50", "/?q=app42", "team000/app420", "all"),
        ("n=1000", "/?n=1000", listed[999], "all"),
        ("filtered user (team004/*), n=50", "/", "team004/app000", "team"),
        ("filtered user, search 'app9'", "/?q=app9", "team004/app900", "team"),
    ]


async def bench(url: str, count: int, rounds: int, tmp: Path) -> list[tuple[str, float, float]]:
    started = time.perf_counter()
    await fill(url, count)
    print(f"filled {count} repositories in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    app = create_app(config(tmp, url))
    results = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
            for label, path, expect, user in cases(count):
                client.cookies.clear()
                await sign_in(client, user)
                samples = await timed(client, path, rounds, expect)
                results.append((label, statistics.median(samples), _p95(samples)))
    return results


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=10_000, help="at least 5000")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (postgresql+asyncpg://...)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as directory:
        tmp = Path(directory)
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/registry.db"
        results = asyncio.run(bench(url, args.repos, args.rounds, tmp))
    kind = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"\nUI repository list, {args.repos} repositories, {kind}, {args.rounds} rounds, in-process"
        f" (target < {TARGET_MS:.0f} ms)\n"
    )
    print(f"| {'page':<34} | {'median ms':>9} | {'p95 ms':>7} |")
    print(f"|{'-' * 36}|{'-' * 10}:|{'-' * 8}:|")
    for label, median, p95 in results:
        print(f"| {label:<34} | {median:9.1f} | {p95:7.1f} |")


if __name__ == "__main__":
    main()
