"""Blob GET side by side with curl: ``.venv/bin/python bench/blob_get.py [--rounds N]``.

Ours and distribution's ``docker-registry`` on the same machine, filesystem storage, each pushed the same blobs (one
of 256 MiB, one of 1 GiB, eight of 64 MiB). Each round, for each server in turn (the order alternating), curl
downloads the 256 MiB and the 1 GiB blob to /dev/null, then eight curls download the eight 64 MiB blobs at once.
Prints the median MiB/s of each and the ratio ours/reference.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import make_servers  # noqa: E402

MiB = 1 << 20
REPO = "bench/blobs"


def push(base_url: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with httpx.Client(base_url=base_url, timeout=600) as client:
        start = client.post(f"/v2/{REPO}/blobs/uploads/")
        assert start.status_code == 202, start.text
        location = httpx.URL(start.headers["location"])
        done = client.put(str(location.copy_merge_params({"digest": digest})), content=data)
        assert done.status_code == 201, done.text
    return digest


def curl(urls: list[str]) -> float:
    """Seconds for curl to fetch every URL at once (one process each), to /dev/null."""
    started = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-sf", "-o", "/dev/null", url]) for url in urls]
    for proc in procs:
        assert proc.wait() == 0
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    blobs = {"256 MiB": [os.urandom(256 * MiB)], "1 GiB": [os.urandom(1024 * MiB)]}
    blobs["8 x 64 MiB at once"] = [os.urandom(64 * MiB) for _ in range(8)]
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent.parent.parent) as tmp:
        servers = make_servers(Path(tmp))
        urls: dict[tuple[str, str], list[str]] = {}
        try:
            for server in servers:
                server.start()
                for row, datas in blobs.items():
                    digests = [push(server.base_url, data) for data in datas]
                    urls[(server.name, row)] = [f"{server.base_url}/v2/{REPO}/blobs/{d}" for d in digests]
            timings: dict[tuple[str, str], list[float]] = {}
            for round_ in range(args.rounds):
                order = servers if round_ % 2 == 0 else servers[::-1]
                for server in order:
                    for row in blobs:
                        timings.setdefault((server.name, row), []).append(curl(urls[(server.name, row)]))
        finally:
            for server in servers:
                server.stop()
    print(f"\nblob GET with curl, median of {args.rounds} rounds (MiB/s)\n")
    print("| download | ours | reference | ours/reference |")
    print("|---|---|---|---|")
    for row, datas in blobs.items():
        total = sum(len(d) for d in datas) / MiB
        ours, ref = (total / statistics.median(timings[(name, row)]) for name in ("ours", "reference"))
        print(f"| {row} | {ours:.0f} | {ref:.0f} | {ours / ref:.2f}x |")


if __name__ == "__main__":
    main()
