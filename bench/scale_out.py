"""docker push, docker pull and manifest GET through nginx in front of 1 and 3 registry replicas, on one machine.

    .venv/bin/python bench/scale_out.py [--rounds 3] [--seconds 5] [--postgres URL]

The replicas are the e2e tier's (`tests/e2e/cluster.py`): `registry serve` processes sharing one PostgreSQL database
(a new one on the server REGISTRY_TEST_POSTGRES or --postgres names, as scripts/test.sh starts) and one new bucket on
a moto S3 server, behind Debian's nginx with the README's settings, sending each upload's POST, PATCH and PUT to
different replicas when there are several (`tests/e2e/nginx.py`). Access logs off, log level error. Each round
starts a fresh cluster of each size (new database, bucket and nginx port, so docker pushes every layer), times
`docker push` then `docker pull` of bench/docker_push.py's image (a busybox layer and 5 x 40 MiB of random bytes),
then runs `wrk -t2 -c64` on a manifest GET by tag. Same machine for everything, so the 3/1 column is a ratio of
where the time goes, not a measure of scale. Needs root, dockerd, busybox-static, nginx, wrk, PostgreSQL, moto.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
for entry in (REPO_ROOT, REPO_ROOT / "bench"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from docker_push import DockerBench, missing_tools  # noqa: E402
from workloads import wrk  # noqa: E402

from tests.e2e.cluster import cluster, postgres_database  # noqa: E402
from tests.e2e.procs import remove_tree  # noqa: E402
from tests.s3server import MotoServer  # noqa: E402

SIZES = (1, 3)
QUIET = {"log": {"level": "error", "accesslog": {"disabled": True}}}
REPO = "bench/scale"


def measure(bench: DockerBench, moto: MotoServer, admin: str, root: Path, count: int, seconds: int) -> list[float]:
    """[push seconds, pull seconds, manifest GETs/sec] against a fresh cluster of `count` replicas."""
    with postgres_database(admin) as url, cluster(root, url, moto, count=count, extra=QUIET) as ha:
        push, pull = bench.push_then_pull(ha.host, REPO)
        rate, errors = wrk(f"http://{ha.host}/v2/{REPO}/manifests/v1", seconds)
        if errors:
            raise RuntimeError(f"wrk through nginx to {count} replica(s): {errors}")
        return [push, pull, rate]


def table(results: dict[int, list[list[float]]], rounds: int) -> str:
    rows = [("docker push (s)", 0), ("docker pull (s)", 1), ("manifest GET by tag (req/s)", 2)]
    lines = [
        f"| median of {rounds} | 1 replica | 3 replicas | 3 / 1 |",
        "|---|---|---|---|",
    ]
    for label, column in rows:
        one, three = (statistics.median(r[column] for r in results[size]) for size in SIZES)
        lines.append(f"| {label} | {one:.2f} | {three:.2f} | {three / one:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="wrk's duration")
    parser.add_argument("--postgres", default=os.environ.get("REGISTRY_TEST_POSTGRES"))
    args = parser.parse_args()
    problems = missing_tools() + [tool for tool in ("nginx", "wrk") if not shutil.which(tool)]
    if not args.postgres:
        problems.append("a PostgreSQL server (--postgres or REGISTRY_TEST_POSTGRES)")
    if problems:
        sys.exit(f"scale_out.py needs: {', '.join(problems)}")
    work = Path(tempfile.mkdtemp(prefix="regbench-ha-", dir="/tmp"))
    moto = MotoServer(work / "moto")
    bench = DockerBench()
    results: dict[int, list[list[float]]] = {size: [] for size in SIZES}
    try:
        moto.start()
        bench.start()
        for n in range(args.rounds):
            for size in SIZES:
                measured = measure(bench, moto, args.postgres, work / f"round{n}-{size}", size, args.seconds)
                print(f"round {n + 1}, {size} replica(s): {measured}", file=sys.stderr)
                results[size].append(measured)
    finally:
        bench.stop()
        moto.stop()
        remove_tree(work)
    print(table(results, args.rounds))


if __name__ == "__main__":
    main()
