"""What the request record and the access log cost. ``.venv/bin/python bench/access_log.py [--wrk] [--seconds 5]``

First, in process (best of 15 runs, so a busy machine shows less): one access line in each ``log.formatter`` beside
one line of uvicorn's access log (what ``registry serve`` wrote before), and the request-record middleware around a
bare ASGI app. With ``--wrk``, manifest GET requests/sec on four servers side by side (one worker each, their log
written to a file): the access log off, and on in three formats; the rounds take turns, each row is their median.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import logging.config
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from uvicorn.config import LOGGING_CONFIG

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import workloads as w  # noqa: E402
from servers import SERVER_ENV, Server, compile_ours, free_port  # noqa: E402

from registry.events import logformat  # noqa: E402
from registry.events.accesslog import log_access  # noqa: E402
from registry.events.requests import RequestObserving, RequestRecord  # noqa: E402

RUNS = 3000
RECORD = RequestRecord(
    "GET", "/v2/team/app/manifests/v1", "manifest", "team/app", 200, 0, 1089, 0.0018, "alice",
    "0f6a1c9e-1d2b-4f1e-9c55-3a8f3e4d2b10", "10.1.2.3", "docker/27.3.1 go/go1.22.7",
)  # fmt: skip
VARIANTS: dict[str, dict[str, Any]] = {
    "access log off": {"accesslog": {"disabled": True}},
    "text": {"formatter": "text"},
    "logfmt": {"formatter": "logfmt"},
    "json": {"formatter": "json", "fields": {"service": "registry", "environment": "bench"}},
}


def best_us(body: Callable[[], object]) -> float:
    return min(timeit.repeat(body, number=RUNS, repeat=15)) / RUNS * 1e6


def line_costs(log_file: Path) -> dict[str, float]:
    sys.stderr = log_file.open("w", buffering=1)  # line-buffered, as a server's stderr
    try:
        uvicorn = copy.deepcopy(LOGGING_CONFIG)
        uvicorn["formatters"]["access"]["use_colors"] = False
        uvicorn["handlers"]["access"]["stream"] = "ext://sys.stderr"
        logging.config.dictConfig(uvicorn)
        access = logging.getLogger("uvicorn.access")
        args = ("10.1.2.3:5555", "GET", "/v2/team/app/manifests/v1", "1.1", 200)
        rows = {"uvicorn's access line (before)": best_us(lambda: access.info('%s - "%s %s HTTP/%s" %d', *args))}
        for name in logformat.FORMATS:
            logging.config.dictConfig(logformat.log_config(name, {}, logging.INFO))
            rows[f"our access line, {name}"] = best_us(lambda: log_access(RECORD))
        return rows
    finally:
        logging.getLogger().handlers.clear()  # nothing more from this process (httpx's lines) in the output
        sys.stderr.close()
        sys.stderr = sys.__stderr__


async def _bare(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Any) -> None:
    pass


async def _per_request_us(app: Any) -> float:
    started = time.perf_counter()
    for _ in range(RUNS):
        scope = {"type": "http", "method": "GET", "path": "/v2/", "headers": [(b"user-agent", b"docker")]}
        await app({**scope, "client": ("127.0.0.1", 1)}, _receive, _send)
    return (time.perf_counter() - started) / RUNS * 1e6


async def middleware_costs() -> dict[str, float]:
    apps = {
        "bare ASGI app": _bare,
        "+ RequestObserving, no observer": RequestObserving(_bare, []),
        "+ RequestObserving, a no-op observer": RequestObserving(_bare, [lambda record: None]),
    }
    best = dict.fromkeys(apps, float("inf"))
    for _ in range(15):
        for name, app in apps.items():
            best[name] = min(best[name], await _per_request_us(app))
    return best


def start(tmp: Path, name: str, log: dict[str, Any]) -> Server:
    data_dir = tmp / name.replace(" ", "-")
    data_dir.mkdir()
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "info", **log},
        "storage": {"filesystem": {"rootdirectory": str(data_dir / "storage")}},
        "http": {"addr": f"127.0.0.1:{port}"},
        "database": {"url": f"sqlite+aiosqlite:///{data_dir / 'registry.db'}"},
    }
    (data_dir / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    server = Server(name, [sys.executable, "-m", "registry", "serve", str(data_dir / "config.yml")], port, data_dir)
    server.env = SERVER_ENV
    server.start()
    return server


def wrk_rates(tmp: Path, seconds: int, rounds: int) -> dict[str, list[float]]:
    compile_ours()
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    servers = [start(tmp, name, log) for name, log in VARIANTS.items()]
    try:
        for server in servers:
            with httpx.Client(base_url=server.base_url, timeout=30, trust_env=False) as client:
                w.push_image(client, "bench/logs", "v1", b"layer")
        for _ in range(rounds):
            for server in servers:
                rate, errors = w.wrk(f"{server.base_url}/v2/bench/logs/manifests/v1", seconds)
                assert not errors, f"{server.name}: {errors}"
                rates[server.name].append(rate)
    finally:
        for server in servers:
            server.stop()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wrk", action="store_true", help="also run four servers under wrk")
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-accesslog-") as tmp:
        costs = {**line_costs(Path(tmp) / "lines.log"), **asyncio.run(middleware_costs())}
        print(f"{'in process, per request':<45}{'us':>8}")
        for name, value in costs.items():
            print(f"{name:<45}{value:>8.1f}")
        if args.wrk:
            rates = wrk_rates(Path(tmp), args.seconds, args.rounds)
            base = statistics.median(rates["access log off"])
            print(f"\n{'manifest GET, wrk -c64':<45}{'req/s':>8}{'vs off':>10}")
            for name, values in rates.items():
                median = statistics.median(values)
                print(f"{name:<45}{median:>8.0f}{median / base - 1:>+10.1%}")


if __name__ == "__main__":
    main()
