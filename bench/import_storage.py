"""``registry import`` of a distribution storage: ``.venv/bin/python bench/import_storage.py [--manifests N]``.

Writes distribution's layout for N image manifests (100 per repository, each with its config, its own layer and a
layer all share, and a tag) on the filesystem and in an S3 bucket (moto, over HTTP, as the tests reach it), then runs
``registry import`` on each as a child process, twice: the first import, then a second run over the same storage
(what a switch-over's second pass costs when nothing changed). Prints time, manifests per second and the peak
memory of the import process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.s3server import MotoServer  # noqa: E402

PER_REPOSITORY = 100
# the command in a process that reports its own peak resident memory last on stderr: VmHWM, its address space's
# high-water mark (getrusage's ru_maxrss would not do: after fork and exec it still counts the parent's pages, and this
# bench's parent grows with the S3 layout it wrote, which made the import look as if it grew with the bucket)
PEAK_WRAPPER = (
    "import sys\n"
    "from registry.cli import main\n"
    "main(sys.argv[1:])\n"
    "peak = next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:'))\n"
    "print('peak-kib', peak, file=sys.stderr)\n"
)
V2 = "docker/registry/v2"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_key(data: bytes) -> str:
    hexa = hashlib.sha256(data).hexdigest()
    return f"{V2}/blobs/sha256/{hexa[:2]}/{hexa}/data"


def link_key(directory: str, data: bytes) -> str:
    return f"{directory}/sha256/{hashlib.sha256(data).hexdigest()}/link"


def layout(count: int) -> Iterator[tuple[str, bytes]]:
    """(key, bytes) of everything distribution writes for ``count`` pushes of one-tag images."""
    shared = b"a layer every image has"
    yield blob_key(shared), shared
    for number in range(count):
        repo = f"{V2}/repositories/bench/r{number // PER_REPOSITORY:04d}"
        config, layer = json.dumps({"n": number}).encode(), f"layer {number}".encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest(config),
                           "size": len(config)},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": digest(d),
                            "size": len(d)} for d in (shared, layer)],
            }
        ).encode()  # fmt: skip
        for data in (config, layer, manifest):
            yield blob_key(data), data
        for data in (config, layer, shared):
            yield link_key(f"{repo}/_layers", data), digest(data).encode()
        yield link_key(f"{repo}/_manifests/revisions", manifest), digest(manifest).encode()
        yield f"{repo}/_manifests/tags/t{number}/current/link", digest(manifest).encode()


def write_files(root: Path, count: int) -> None:
    for key, data in layout(count):
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def write_objects(moto: MotoServer, bucket: str, count: int) -> None:
    client = moto.client()
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda item: client.put_object(Bucket=bucket, Key=f"registry/{item[0]}", Body=item[1]),
                      layout(count)))  # fmt: skip


def run_import(config: Path) -> tuple[float, float, str]:
    """Seconds, peak MiB of the child, and its summary's first line."""
    start = time.perf_counter()
    command = [sys.executable, "-c", PEAK_WRAPPER, "import", str(config)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    peak_kib = int(done.stderr.strip().splitlines()[-1].removeprefix("peak-kib "))
    return seconds, peak_kib / 1024, done.stdout.splitlines()[0]


def config_file(tmp: Path, name: str, storage: dict[str, Any]) -> Path:
    doc = {"version": "0.1", "storage": storage, "database": {"url": f"sqlite:///{tmp / name}.db"}}
    path = tmp / f"{name}.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def measure(label: str, config: Path, count: int, rows: list[str]) -> None:
    for run in ("first", "again"):
        seconds, peak, summary = run_import(config)
        assert f"{count} manifests" in summary, summary
        rows.append(f"| {label} | {run} | {count} | {seconds:.1f} s | {count / seconds:,.0f} | {peak:.0f} MiB |")


def timed(what: str, work: Callable[[], None]) -> None:
    start = time.perf_counter()
    work()
    print(f"{what}: {time.perf_counter() - start:.1f} s", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--manifests", type=int, default=10_000)
    parser.add_argument("--s3-manifests", type=int, default=None, help="default: --manifests")
    args = parser.parse_args()
    rows = ["| storage | run | manifests | time | manifests/s | peak RSS |", "| --- | --- | --- | --- | --- | --- |"]
    with tempfile.TemporaryDirectory(prefix="bench-import-") as directory:
        tmp = Path(directory)
        timed("writing the filesystem layout", lambda: write_files(tmp / "data", args.manifests))
        fs = config_file(tmp, "fs", {"filesystem": {"rootdirectory": str(tmp / "data")}})
        measure("filesystem", fs, args.manifests, rows)
        moto = MotoServer(tmp / "moto")
        moto.start()
        try:
            count = args.s3_manifests or args.manifests
            bucket = moto.create_bucket()
            timed("writing the S3 layout", lambda: write_objects(moto, bucket, count))
            params = moto.driver_params(bucket, rootdirectory="/registry")
            measure("S3 (moto)", config_file(tmp, "s3", {"s3": params}), count, rows)
        finally:
            moto.stop()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
