"""What webhook notifications cost: our server without an endpoint, with one (a receiver in this process that
answers 200), and with one that ignores pulls (``ignore.actions: [pull]``). Two columns: manifest GET requests/sec
(wrk, 64 connections; each GET is a pull event) and 20 docker-style pushes at once (seconds, each a new 1 MiB image;
each push writes its events in its own transactions).
``.venv/bin/python bench/notifications.py [--seconds 5] [--rounds 3] [--workers 1]``

The servers run side by side with the access log off; the rounds take turns, and each row is the median of its
rounds. After the rows the receiver's count of events is printed, with what the webhook server's outbox still holds.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads as w  # noqa: E402
from servers import SERVER_ENV, Server, compile_ours, free_port  # noqa: E402

PUSHES = 20


class Receiver:
    """A webhook endpoint that counts the events it is sent."""

    def __init__(self) -> None:
        self.events = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real webhook server

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.events += len(json.loads(body)["events"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def start(tmp: Path, name: str, extra: dict[str, Any], workers: int) -> Server:
    data_dir = tmp / name.replace(" ", "-")
    data_dir.mkdir()
    port = free_port()
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(data_dir / "storage")}},
        "http": {"addr": f"127.0.0.1:{port}", "workers": workers},
        "database": {"url": f"sqlite+aiosqlite:///{data_dir / 'registry.db'}"},
        **extra,
    }
    (data_dir / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "registry", "serve", str(data_dir / "config.yml")]
    server = Server(name, command, port, data_dir, env=SERVER_ENV)
    server.start()
    return server


def waiting(server: Server) -> int:
    with closing(sqlite3.connect(server.data_dir / "registry.db")) as connection:
        return int(connection.execute("SELECT count(*) FROM event_outbox").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    compile_ours()
    receiver = Receiver()
    webhook = {"endpoints": [{"name": "bench", "url": receiver.url}]}
    variants: dict[str, dict[str, Any]] = {"no endpoint": {}, "webhook": {"notifications": webhook}}
    nopull = {"endpoints": [{"name": "bench", "url": receiver.url, "ignore": {"actions": ["pull"]}}]}
    variants["webhook, no pulls"] = {"notifications": nopull}
    rates: dict[str, list[float]] = {}
    pushes: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-notifications-") as tmp:
        servers = [start(Path(tmp), name, extra, args.workers) for name, extra in variants.items()]
        try:
            for server in servers:
                with httpx.Client(base_url=server.base_url, timeout=30, trust_env=False) as client:
                    w.push_image(client, "bench/notify", "v1", b"layer")
                w.concurrent_pushes(server.base_url, w.small_images("bench/warm", PUSHES, w.MiB))  # not timed
            for round_number in range(args.rounds):
                for server in servers:
                    rate, errors = w.wrk(f"{server.base_url}/v2/bench/notify/manifests/v1", args.seconds)
                    assert not errors, f"{server.name}: {errors}"
                    rates.setdefault(server.name, []).append(rate)
                    images = w.small_images(f"bench/r{round_number}", PUSHES, w.MiB)
                    pushes.setdefault(server.name, []).append(w.concurrent_pushes(server.base_url, images))
            time.sleep(3)  # delivery catches up (reported below, not timed)
            left = waiting(servers[1])
        finally:
            for server in servers:
                server.stop()
    print_table(rates, pushes, args)
    print(f"the receiver got {receiver.events} events; {left} were still in the webhook server's outbox")


def print_table(rates: dict[str, list[float]], pushes: dict[str, list[float]], args: Any) -> None:
    base_rate, base_push = statistics.median(rates["no endpoint"]), statistics.median(pushes["no endpoint"])
    print(f"workers: {args.workers}, wrk {args.seconds}s x {args.rounds} rounds, {PUSHES} pushes of 1 MiB at once")
    print(f"{'':<18}{'manifest GET/s':>16}{'vs none':>9}{f'{PUSHES} pushes s':>15}{'vs none':>9}")
    for name in rates:
        rate, push = statistics.median(rates[name]), statistics.median(pushes[name])
        print(f"{name:<18}{rate:>16.0f}{rate / base_rate - 1:>+9.1%}{push:>15.2f}{push / base_push - 1:>+9.1%}")


if __name__ == "__main__":
    main()
