"""Blob GET side by side with curl: ``.venv/bin/python bench/blob_get.py [--rounds N]``.

Ours and distribution's ``docker-registry`` on the same machine, filesystem storage, each pushed the same blobs (one
of 256 MiB, one of 1 GiB, eight of 64 MiB). Each round, for each server in turn (the order alternating), curl
downloads the 256 MiB and the 1 GiB blob to /dev/null, then eight curls download the eight 64 MiB blobs at once.
Prints the median MiB/s of each and the ratio ours/reference, beside nginx serving the very files our server
stored (a static file server with sendfile: what this machine and curl can do at best).
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

from servers import Server, free_port, make_servers  # noqa: E402

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


NGINX_CONF = """daemon off; user root; worker_processes auto; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{}}
http {{
    access_log off; sendfile on; tcp_nopush on; default_type application/octet-stream;
    client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp};
    scgi_temp_path {tmp};
    server {{ listen 127.0.0.1:{port}; root {root}; location = /ready {{ return 200; }} }}
}}
"""


def static_server(tmp: Path, root: Path) -> Server:
    """nginx serving the blob files under ``root`` (our storage) as they are: the machine's limit."""
    data_dir = tmp / "nginx"
    data_dir.mkdir()
    port = free_port()
    conf = data_dir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=data_dir, port=port, root=root))
    return Server("nginx", ["nginx", "-c", str(conf), "-p", str(data_dir)], port, data_dir, ready_path="/ready")


def blob_file_url(server: Server, digest: str) -> str:
    hexa = digest.removeprefix("sha256:")
    return f"{server.base_url}/docker/registry/v2/blobs/sha256/{hexa[:2]}/{hexa}/data"


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
        ours, reference = make_servers(Path(tmp))
        nginx = static_server(Path(tmp), ours.data_dir / "storage")
        servers = [ours, reference, nginx]
        urls: dict[tuple[str, str], list[str]] = {}
        try:
            for server in servers:
                server.start()
                for row, datas in blobs.items():
                    if server is nginx:  # the files our server stored
                        digests = ["sha256:" + hashlib.sha256(data).hexdigest() for data in datas]
                        urls[(server.name, row)] = [blob_file_url(server, d) for d in digests]
                        continue
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
    print("| download | ours | reference | ours/reference | nginx, static | ours/nginx |")
    print("|---|---|---|---|---|---|")
    for row, datas in blobs.items():
        total = sum(len(d) for d in datas) / MiB
        mine, ref, static = (total / statistics.median(timings[(name, row)]) for name in ("ours", "reference", "nginx"))
        print(f"| {row} | {mine:.0f} | {ref:.0f} | {mine / ref:.2f}x | {static:.0f} | {mine / static:.2f}x |")


if __name__ == "__main__":
    main()
