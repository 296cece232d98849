"""Collecting 100,000 unreferenced blobs: ``.venv/bin/python bench/gc.py [--blobs N] [--seconds S]``.

Our registry serves an image while ``registry gc`` (delay and lease 0) collects N unreferenced blobs beside it: the
collection's wall time and peak RSS, and the manifest GET rate (wrk, 2 threads, 16 connections) without a collection
and during one. Distribution's ``garbage-collect`` gets the same N blob files with no links, offline as it must be
(it stops the world: no GET can be measured during it). The blobs are written straight into storage and, for ours,
into SQLite as blobs a repository links and no manifest names, the state an upload nothing referenced leaves.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import SERVER_ENV, Server, compile_ours, config_text, free_port  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def write_blobs(storage: Path, count: int) -> list[tuple[str, int]]:
    """``count`` small blob files in distribution's layout; their (digest, size)."""
    written = []
    for i in range(count):
        data = f"unreferenced blob {i}".encode()
        hexdigest = hashlib.sha256(data).hexdigest()
        directory = storage / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "data").write_bytes(data)
        written.append(("sha256:" + hexdigest, len(data)))
    return written


def ours(tmp: Path, count: int) -> Server:
    data_dir = tmp / "ours"
    data_dir.mkdir()
    port = free_port()
    config = yaml.safe_load(config_text(port, data_dir, with_database=True))
    config["storage"]["gc"] = {"enabled": False, "delay": "0s", "lease": "0s"}
    path = data_dir / "config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    subprocess.run([sys.executable, "-m", "registry", "migrate", str(path)], check=True, cwd=data_dir)
    blobs = write_blobs(data_dir / "storage", count)
    old = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(data_dir / "registry.db") as db:
        db.execute("INSERT INTO repositories (name, created_at) VALUES ('bench/uploads', ?)", (old,))
        db.executemany("INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?)", [(d, s, old) for d, s in blobs])
        db.executemany(
            "INSERT INTO repository_blobs (repository_id, blob_digest, created_at) VALUES (1, ?, ?)",
            [(d, old) for d, _ in blobs],
        )
        db.executemany(
            "INSERT INTO gc_blob_reviews (digest, review_after, queued_at, event) VALUES (?, ?, ?, 'uploaded')",
            [(d, old, old) for d, _ in blobs],
        )
    command = [sys.executable, "-m", "registry", "serve", str(path)]
    return Server("ours", command, port, data_dir, env=SERVER_ENV)


def push_image(base_url: str) -> str:
    """One small image to GET during the collection; the manifest's URL."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        descriptors = []
        for data in (b'{"architecture":"amd64","os":"linux"}', b"a layer to keep"):
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            response = client.post("/v2/bench/app/blobs/uploads/", params={"digest": digest}, content=data)
            assert response.status_code == 201, response.text
            descriptors.append({"mediaType": "application/octet-stream", "digest": digest, "size": len(data)})
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptors[0], "layers": descriptors[1:]}
        body = json.dumps(manifest).encode()
        response = client.put("/v2/bench/app/manifests/v1", content=body, headers={"content-type": OCI_MANIFEST})
        assert response.status_code == 201, response.text
    return f"{base_url}/v2/bench/app/manifests/v1"


def wrk(url: str, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "-H", f"Accept: {OCI_MANIFEST}", url],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    assert match, out
    return float(match.group(1))


def timed_child(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, stdout's last line) of a command run to its end."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=SERVER_ENV)
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True)
    reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    reader.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, b"".join(lines[-20:]).decode()
    return elapsed, usage.ru_maxrss / 1024, (lines[-1].decode().strip() if lines else "")


def reference(tmp: Path, count: int) -> tuple[float, float, int]:
    data_dir = tmp / "reference"
    data_dir.mkdir()
    path = data_dir / "config.yml"
    path.write_text(config_text(free_port(), data_dir, with_database=False))
    write_blobs(data_dir / "storage", count)
    (data_dir / "storage/docker/registry/v2/repositories").mkdir()  # no repository: every blob is unreferenced
    elapsed, peak, _ = timed_child(["docker-registry", "garbage-collect", str(path)], data_dir)
    left = sum(1 for _ in (data_dir / "storage/docker/registry/v2/blobs/sha256").glob("*/*/data"))
    return elapsed, peak, left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration without a collection")
    args = parser.parse_args()
    compile_ours()
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent.parent.parent) as tmp:
        server = ours(Path(tmp), args.blobs)
        server.start()
        try:
            url = push_image(server.base_url)
            idle = wrk(url, args.seconds)
            during: list[float] = []
            load = threading.Thread(target=lambda: during.append(wrk(url, args.seconds)))
            load.start()
            gc_command = [sys.executable, "-m", "registry", "gc", str(server.data_dir / "config.yml")]
            elapsed, peak, summary = timed_child(gc_command, server.data_dir)
            load.join()
            left = sum(1 for _ in (server.data_dir / "storage/docker/registry/v2/blobs/sha256").glob("*/*/data"))
        finally:
            server.stop()
        ref_elapsed, ref_peak, ref_left = reference(Path(tmp), args.blobs)
    print(f"\n{args.blobs} unreferenced blobs; ours: {summary}\n")
    print("| measure | ours (`registry gc`, server running) | distribution (`garbage-collect`, offline) |")
    print("|---|---|---|")
    print(f"| collection wall time | {elapsed:.1f} s | {ref_elapsed:.1f} s |")
    print(f"| collector peak RSS | {peak:.0f} MiB | {ref_peak:.0f} MiB |")
    print(f"| blob files left (1 kept by the image's manifest is ours) | {left} | {ref_left} |")
    print(f"| manifest GET req/s without a collection | {idle:.0f} | n/a |")
    print(f"| manifest GET req/s during the collection (first {args.seconds} s) | {during[0]:.0f} | n/a (offline) |")


if __name__ == "__main__":
    main()
