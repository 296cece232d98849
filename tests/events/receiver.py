"""A webhook receiver for the tests: a real HTTP server (standard library, in a thread) that records every envelope
posted to it and answers a status the test sets; it can go down and come back on the same port."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/events"
        self.status = 200
        self.envelopes: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.refused = 0  # posts answered with a status other than 2xx
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._changed:
            return [event for envelope in self.envelopes for event in envelope["events"]]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver._record(self.path, dict(self.headers.items()), body)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> None:
        with self._changed:
            if self.status < 300:
                self.envelopes.append(json.loads(body))
                self.headers.append({**headers, "path": path})
            else:
                self.refused += 1
            self._changed.notify_all()

    def wait_for(self, done: Callable[[Receiver], bool], timeout: float = 30.0) -> None:
        """Until ``done(self)``, re-checked at every post; AssertionError after ``timeout``."""
        with self._changed:
            if not self._changed.wait_for(lambda: done(self), timeout):
                raise AssertionError(f"the receiver did not get what was expected; it got {self.envelopes}")

    def manifest_pushes(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["action"] == "push" and "manifest" in e["target"]["mediaType"]]
