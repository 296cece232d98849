"""A tiny HTTP server for the health checks' tests: in a thread, answering every request the status the test sets,
recording each one's method and Authorization header."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Downstream:
    def __init__(self) -> None:
        self.status = 500
        self.seen: list[tuple[str, str | None]] = []
        downstream = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                downstream.seen.append((self.command, self.headers.get("Authorization")))
                self.send_response(downstream.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_HEAD = do_GET = answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.addr}/healthz"


@contextmanager
def downstream_running() -> Iterator[Downstream]:
    downstream = Downstream()
    thread = threading.Thread(target=downstream.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield downstream
    finally:
        downstream.server.shutdown()
        downstream.server.server_close()
        thread.join()
