"""Layer unpacking before and after a change: ``.venv/bin/python bench/unpack.py [--before REV] [--rounds N]``.

Makes two plain (uncompressed, so that gzip's cost does not hide the unpacker's) 1 GiB layer tars: 16 files of
64 MiB, and 65,536 files of 16 KiB in 256 directories. Each round unpacks both with `runtime.unpack.unpack_blob`
from a git worktree at REV (the unpacker built on Python's tarfile, by default) and from this checkout, in turn, each
in a child process of its own into a fresh directory on the same filesystem (after a sync, the order alternating
from round to round), and reads the child's peak RSS.
Prints the median wall and CPU time of each, the ratios, and the peaks (before/after). Wall time on a 1 GiB write
depends on the disk's writeback as much as on the unpacker; CPU time is what the unpacker itself costs.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BEFORE = "009f6fb"  # the last commit whose runtime unpacked with tarfile
MiB = 1 << 20

CHILD = """
import os, sys, time
from runtime.unpack import unpack_blob
started, cpu = time.perf_counter(), os.times()
unpack_blob(sys.argv[1], sys.argv[2])
elapsed, done = time.perf_counter() - started, os.times()
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(elapsed, done.user + done.system - cpu.user - cpu.system, peak)
"""


def make_layer(path: Path, files: int, size: int, per_dir: int) -> None:
    chunk = os.urandom(size)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(files):
            if i % per_dir == 0:
                info = tarfile.TarInfo(f"d{i // per_dir}")
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            info = tarfile.TarInfo(f"d{i // per_dir}/f{i}")
            info.size, info.mode = size, 0o644
            tar.addfile(info, io.BytesIO(chunk))


def unpack_once(tree: Path, layer: Path, work: Path) -> tuple[float, float, int]:
    os.sync()  # the previous run's dirty pages written back first: each run starts from the same disk state
    dest = Path(tempfile.mkdtemp(dir=work))
    env = {**os.environ, "PYTHONPATH": str(tree)}
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, layer, dest], env=env, check=True, capture_output=True)
        elapsed, cpu, peak = out.stdout.split()
        return float(elapsed), float(cpu), int(peak)
    finally:
        subprocess.run(["rm", "-rf", dest], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help=f"the revision to compare with (default {BEFORE})")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=str(REPO_ROOT.parent), help="where the layers unpack (/dev/shm: no disk)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        worktree = Path(tempfile.mkdtemp(dir=REPO_ROOT.parent)) / "before"
        subprocess.run(["git", "-C", REPO_ROOT, "worktree", "add", "--detach", worktree, args.before], check=True)
        try:
            run(work, worktree, args.rounds, args.before)
        finally:
            subprocess.run(["git", "-C", REPO_ROOT, "worktree", "remove", "--force", worktree], check=True)


def run(work: Path, worktree: Path, rounds: int, before: str) -> None:
    layers = {"16 x 64 MiB files": (16, 64 * MiB, 16), "65,536 x 16 KiB files": (65_536, 16 << 10, 256)}
    paths = {}
    for name, (files, size, per_dir) in layers.items():
        paths[name] = work / f"{files}.tar"
        started = time.perf_counter()
        make_layer(paths[name], files, size, per_dir)
        print(f"made {name}: {paths[name].stat().st_size / MiB:.0f} MiB in {time.perf_counter() - started:.1f} s")
    results: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    sides = [("before", worktree), ("after", REPO_ROOT)]
    for round_ in range(rounds):
        for name, path in paths.items():
            for side, tree in sides if round_ % 2 == 0 else reversed(sides):  # neither side always goes first
                results.setdefault((name, side), []).append(unpack_once(tree, path, work))
    print(f"\nunpack_blob, median of {rounds} rounds; before = {before}, after = this checkout; CPU = user + system\n")
    print("| layer | wall before | wall after | after/before | CPU before | CPU after | after/before | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for name in paths:
        before_runs, after_runs = results[(name, "before")], results[(name, "after")]
        wall = [statistics.median(r[0] for r in runs) for runs in (before_runs, after_runs)]
        cpu = [statistics.median(r[1] for r in runs) for runs in (before_runs, after_runs)]
        peaks = "/".join(f"{max(r[2] for r in runs) >> 10}" for runs in (before_runs, after_runs))
        print(
            f"| {name} | {wall[0]:.2f} s | {wall[1]:.2f} s | {wall[1] / wall[0]:.2f} "
            f"| {cpu[0]:.2f} s | {cpu[1]:.2f} s | {cpu[1] / cpu[0]:.2f} | {peaks} MiB |"
        )


if __name__ == "__main__":
    main()
