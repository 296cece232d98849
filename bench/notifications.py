"""What webhook notifications cost: our server without an endpoint, with one (a receiver that answers 200, in a
process of its own), with one that ignores pulls (``ignore.actions: [pull]``), and with one and metrics on (the
issue's pair). Three columns: manifest GET requests/sec (wrk, 64 connections; each GET is a pull event), the
server's CPU time per GET meanwhile (user and system, over the GETs it answered: what a GET costs, whatever else the
machine runs), and 20 docker-style pushes at once (seconds, each a new 1 MiB image; each push writes its events in
its own transactions).
``.venv/bin/python bench/notifications.py [--seconds 5] [--rounds 3] [--workers 1]`` (bench/README.md: 2 s x 20)

The servers run side by side with the access log off. All the GET rounds come first, then the push rounds (a push's
writes slow what follows); in each round the servers take turns, each first in turn. A row gives each column's
median, the median of its rounds' change against the server without an endpoint in the same round ("vs none": the
machine is shared and its load drifts more between rounds than within one), and the range of its rounds. Then the
receiver's count of events (pulls apart: they should match the webhook server's GETs, none dropped) and what the
webhook server's outbox still holds. The receiver is as cheap as it can be (asyncio, the events counted in a body
without decoding it): it runs on the same two cores as wrk and the servers, where a real receiver runs elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads as w  # noqa: E402
from servers import Server, compile_ours, cpu_seconds, free_port, start_ours  # noqa: E402

PUSHES = 20
LENGTH = b"content-length:"


class Receiver:
    """A webhook endpoint in a process of its own (``--receive``: asyncio, one keep-alive connection per sender) that
    answers 200 and counts the events it is sent without decoding them."""

    def __init__(self) -> None:
        command = [sys.executable, __file__, "--receive"]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        self.events = self.pulls = 0

    def count(self) -> None:
        """Ask the receiver for its counts."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        self.events, self.pulls = (int(word) for word in self.process.stdout.readline().split())

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def receive() -> None:
    """The receiver's process: prints its URL, then its counts for each line read on stdin, until stdin closes."""
    counts = [0, 0]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line[15:]) for line in head.split(b"\r\n") if line.lower().startswith(LENGTH))
                body = await reader.readexactly(length)
                counts[0] += body.count(b'"action":')
                counts[1] += body.count(b'"action":"pull"')
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", free_port())
        print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/events", flush=True)
        while await asyncio.to_thread(sys.stdin.readline):
            print(*counts, flush=True)

    asyncio.run(main())


def waiting(server: Server) -> int:
    with closing(sqlite3.connect(server.data_dir / "registry.db")) as connection:
        return int(connection.execute("SELECT count(*) FROM event_outbox").fetchone()[0])


COLUMNS = ("manifest GET/s", "CPU us/GET", f"{PUSHES} pushes s")
Figures = dict[str, dict[str, list[float]]]  # column: server: one figure per round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--receive", action="store_true", help=argparse.SUPPRESS)  # the receiver's process
    args = parser.parse_args()
    if args.receive:
        return receive()
    compile_ours()
    receiver = Receiver()
    webhook = {"endpoints": [{"name": "bench", "url": receiver.url}]}
    variants: dict[str, dict[str, Any]] = {"no endpoint": {}, "webhook": {"notifications": webhook}}
    nopull = {"endpoints": [{"name": "bench", "url": receiver.url, "ignore": {"actions": ["pull"]}}]}
    variants["webhook, no pulls"] = {"notifications": nopull}
    metrics = {"debug": {"addr": f"127.0.0.1:{free_port()}", "prometheus": {"enabled": True}}}
    variants["webhook + metrics"] = {"notifications": webhook, "http": metrics}  # the pair, together
    figures: Figures = {column: {} for column in COLUMNS}
    with tempfile.TemporaryDirectory(prefix="bench-notifications-") as tmp:
        servers = [start_ours(Path(tmp), name, extra, args.workers) for name, extra in variants.items()]
        try:
            for server in servers:
                with httpx.Client(base_url=server.base_url, timeout=30, trust_env=False) as client:
                    w.push_image(client, "bench/notify", "v1", b"layer")
                w.concurrent_pushes(server.base_url, w.small_images("bench/warm", PUSHES, w.MiB))  # not timed
            for round_number in range(args.rounds):  # all the GETs first: a push's writes slow what follows
                for server in in_turn(servers, round_number):
                    measure_gets(server, args.seconds, figures)
            for round_number in range(args.rounds):
                for server in in_turn(servers, round_number):
                    images = w.small_images(f"bench/r{round_number}", PUSHES, w.MiB)
                    figures[COLUMNS[2]].setdefault(server.name, []).append(w.concurrent_pushes(server.base_url, images))
            time.sleep(3)  # delivery catches up (reported below, not timed)
            left = waiting(servers[1])
            receiver.count()
        finally:
            for server in servers:
                server.stop()
            receiver.stop()
    print_table(figures, args)
    gets = round(sum(figures[COLUMNS[0]]["webhook"]) * args.seconds)
    print(f"the receiver got {receiver.events} events, {receiver.pulls} of them pulls (the webhook server answered")
    print(f"about {gets} manifest GETs); {left} were still in the webhook server's outbox")


def in_turn(servers: list[Server], round_number: int) -> list[Server]:
    """The servers in this round's order: each first in turn."""
    first = round_number % len(servers)
    return servers[first:] + servers[:first]


def measure_gets(server: Server, seconds: int, figures: Figures) -> None:
    """wrk's GETs, and the server's CPU time per GET meanwhile."""
    before = cpu_seconds(server)
    rate, errors = w.wrk(f"{server.base_url}/v2/bench/notify/manifests/v1", seconds)
    assert not errors, f"{server.name}: {errors}"
    figures[COLUMNS[0]].setdefault(server.name, []).append(rate)
    figures[COLUMNS[1]].setdefault(server.name, []).append((cpu_seconds(server) - before) / (rate * seconds) * 1e6)


def print_table(figures: Figures, args: Any) -> None:
    """Each column's median, its change against no endpoint, and the range of its rounds."""
    print(f"workers: {args.workers}, wrk {args.seconds}s x {args.rounds} rounds, {PUSHES} pushes of 1 MiB at once")
    print(f"{'':<18}" + "".join(f"{column:>16}{'vs none':>8}{'rounds':>13}" for column in COLUMNS))
    for name in figures[COLUMNS[0]]:
        print(f"{name:<18}" + "".join(_cell(figures[column], name) for column in COLUMNS))


def _cell(figures: dict[str, list[float]], name: str) -> str:
    """The median; the median of each round's change against no endpoint measured just before it (the machine's
    load drifts between rounds more than within one); the range of the rounds."""
    median = statistics.median(figures[name])
    change = statistics.median(
        ours / base - 1 for ours, base in zip(figures[name], figures["no endpoint"], strict=True)
    )
    form = ".2f" if median < 10 else ".0f"
    spread = f"{min(figures[name]):{form}}-{max(figures[name]):{form}}"
    return f"{median:>16{form}}{change:>+8.1%}{spread:>13}"


if __name__ == "__main__":
    main()
