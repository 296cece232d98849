"""What Prometheus metrics cost: our server with metrics off, on (``http.debug.prometheus``), and on with the health
checks (``health.storagedriver`` and ``health.database`` every second). Two workloads: manifest GET (wrk, 64
connections) and 20 docker-style pushes at once (each a new 1 MiB image: HEAD, POST, PATCH, PUT per blob, then the
manifest). ``.venv/bin/python bench/metrics.py [--seconds 5] [--rounds 5] [--workers 1]``

For each, the throughput (requests/s, seconds for the 20 pushes) and the server's CPU time per request or per push
(user + system of the serving process and its workers, from /proc): on a machine shared with other work the CPU
time is the steadier measure of what metrics add. The servers run side by side with the access log off
(``bench/access_log.py`` measures that); the rounds take turns, and each row is the median of its rounds. After the
rows each measured server's metrics are scraped once, to check that they counted every GET sent (wrk's rate times
its seconds: about the number sent).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import metrics_in_process  # noqa: E402
import workloads as w  # noqa: E402
from servers import Server, compile_ours, cpu_seconds, free_port, start_ours  # noqa: E402

CHECK = {"enabled": True, "interval": "1s"}
PUSHES = 20
_T = TypeVar("_T")


def debug() -> dict[str, Any]:
    return {"debug": {"addr": f"127.0.0.1:{free_port()}", "prometheus": {"enabled": True}}}


VARIANTS: dict[str, dict[str, Any]] = {
    "metrics off": {},
    "metrics on": {"http": debug()},
    "metrics + health": {"http": debug(), "health": {"storagedriver": CHECK, "database": CHECK}},
}


def on_cpu(server: Server, work: Callable[[], _T]) -> tuple[_T, float]:
    """What ``work`` returns, and the server's CPU seconds meanwhile."""
    before = cpu_seconds(server)
    result = work()
    return result, cpu_seconds(server) - before


def scraped_manifest_gets(server: Server) -> float | None:
    """The manifest GETs the server's metrics counted (None when it has none)."""
    addr = VARIANTS[server.name].get("http", {}).get("debug", {}).get("addr")
    if addr is None:
        return None
    text = httpx.get(f"http://{addr}/metrics", timeout=30, trust_env=False).text
    wanted = 'registry_http_requests_total{code="200",handler="manifest",method="GET"}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(wanted))


class Rows:
    def __init__(self) -> None:
        self.values: dict[str, dict[str, list[float]]] = {name: {} for name in VARIANTS}

    def add(self, server: Server, column: str, value: float) -> None:
        self.values[server.name].setdefault(column, []).append(value)

    def median(self, name: str, column: str) -> float:
        return statistics.median(self.values[name][column])


def measure(servers: list[Server], rounds: int, seconds: int) -> Rows:
    rows = Rows()
    for round_number in range(rounds):
        for server in servers:
            url = f"{server.base_url}/v2/bench/metrics/manifests/v1"
            (rate, errors), cpu = on_cpu(server, partial(w.wrk, url, seconds))
            assert not errors, f"{server.name}: {errors}"
            rows.add(server, "GET/s", rate)
            rows.add(server, "GETs", rate * seconds)
            rows.add(server, "CPU us/GET", cpu / (rate * seconds) * 1e6)
            images = w.small_images(f"bench/r{round_number}", PUSHES, w.MiB)
            wall, cpu = on_cpu(server, partial(w.concurrent_pushes, server.base_url, images))
            rows.add(server, "pushes s", wall)
            rows.add(server, "CPU ms/push", cpu / PUSHES * 1e3)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--in-process", action="store_true", help="only the in-process table")
    args = parser.parse_args()
    in_process = asyncio.run(metrics_in_process.measure())
    print("in process, CPU per operation (median of 15 batches, taking turns)")
    print(f"{'':<22}{'us/GET':>10}{'vs before':>11}{'us/push':>10}{'vs before':>11}")
    for name, cpu in in_process.items():
        base = in_process["access log" if name.startswith("access log") else "metrics off"]
        get_cost, push_cost = cpu["get"] / base["get"] - 1, cpu["push"] / base["push"] - 1
        print(f"{name:<22}{cpu['get']:>10.1f}{get_cost:>+11.1%}{cpu['push']:>10.0f}{push_cost:>+11.1%}")
    if args.in_process:
        return
    compile_ours()
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        servers = [start_ours(Path(tmp), name, extra, args.workers) for name, extra in VARIANTS.items()]
        try:
            for server in servers:
                with httpx.Client(base_url=server.base_url, timeout=30, trust_env=False) as client:
                    w.push_image(client, "bench/metrics", "v1", b"layer")
                w.concurrent_pushes(server.base_url, w.small_images("bench/warm", PUSHES, w.MiB))  # not timed
            rows = measure(servers, args.rounds, args.seconds)
            counted = {server.name: scraped_manifest_gets(server) for server in servers}
        finally:
            for server in servers:
                server.stop()
    print(f"\nservers, {args.workers} worker(s); wrk {args.seconds} s x {args.rounds} rounds; {PUSHES} pushes at once")
    print_table(rows, counted)


def print_table(rows: Rows, counted: dict[str, float | None]) -> None:
    columns = ["GET/s", "CPU us/GET", "pushes s", "CPU ms/push"]
    print(f"{'':<18}" + "".join(f"{column:>13}{'vs off':>8}" for column in columns) + f"{'GETs counted/sent':>20}")
    for name in VARIANTS:
        cells = []
        for column in columns:
            value, base = rows.median(name, column), rows.median("metrics off", column)
            cells.append(f"{value:>13.1f}{value / base - 1:>+8.1%}")
        seen, sent = counted[name], sum(rows.values[name]["GETs"])
        print(f"{name:<18}" + "".join(cells) + f"{'-' if seen is None else f'{seen:.0f}/{sent:.0f}':>20}")


if __name__ == "__main__":
    main()
