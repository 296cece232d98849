"""A fault-injecting HTTP/1.1 reverse proxy in front of the moto S3 server, on a real loopback port.

The test adds ``Rule``s; a request matching a rule (method, target regex, a header it must carry) gets the rule's
``Fault`` for its next ``times`` matches after letting ``skip`` through. Rules are tried in the order added and a
request meets the first fault that fires, so rules added for one target fail its successive attempts in turn.
Everything else is forwarded unchanged, so the proxy works for the in-process tier and for a registry process
pointed at ``proxy.url`` alike. ``exchanges`` and ``count`` tell what the proxy saw.

Faults:
    ErrorReply      answer locally with an S3 XML error (503 SlowDown by default); S3 never sees the request
    ErrorIn200      answer locally ``200 OK`` with an error body (S3 does this for copy and complete)
    DropRequest     read the request, then close the connection; S3 never sees it
    LoseResponse    forward the request (S3 applies it), then close without answering
    CutBody         forward, relay the response head and ``keep`` bytes of its body, then close

Client connections are kept alive (bodies framed by Content-Length or chunked encoding, ``Expect: 100-continue``
answered by the proxy); each request goes upstream on a connection of its own.
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import socketserver
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

FOREVER = sys.maxsize
PIECE = 64 * 1024
UPSTREAM_TIMEOUT = 120.0
POLL = 0.05  # how often the accept loop checks for stop()
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "expect"})


class Closed(Exception):
    """The peer closed the connection (cleanly between requests, or in the middle of one)."""


# --- faults and rules ------------------------------------------------------------------------------------------------


class Fault:
    """What to do with a matching request; the subclasses below are the choices."""


@dataclass(frozen=True)
class ErrorReply(Fault):
    status: int = 503
    code: str = "SlowDown"
    message: str = "injected by faultproxy"


@dataclass(frozen=True)
class ErrorIn200(Fault):
    code: str = "InternalError"
    message: str = "injected by faultproxy"


@dataclass(frozen=True)
class DropRequest(Fault):
    pass


@dataclass(frozen=True)
class LoseResponse(Fault):
    pass


@dataclass(frozen=True)
class CutBody(Fault):
    keep: int = 1024


@dataclass
class Rule:
    fault: Fault
    method: str | None = None
    target: str = ""  # searched in the request target (path and query)
    header: str | None = None  # a header the request must carry, e.g. x-amz-copy-source
    times: int = 1
    skip: int = 0
    matched: int = 0
    fired: int = 0

    def matches(self, request: Request) -> bool:
        if self.method is not None and request.method != self.method:
            return False
        if self.header is not None and request.header(self.header) is None:
            return False
        return re.search(self.target, request.target) is not None

    def take(self) -> Fault | None:
        """Count a match; the fault when this match is one to fail."""
        self.matched += 1
        if self.matched <= self.skip or self.fired >= self.times:
            return None
        self.fired += 1
        return self.fault


@dataclass(frozen=True)
class Exchange:
    method: str
    target: str
    outcome: str  # "forwarded" or the fault's class name


# --- HTTP/1.1 messages -----------------------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def keep_alive(self) -> bool:
        connection = (self.header("connection") or "").lower()
        return self.version == "HTTP/1.1" and "close" not in connection


@dataclass
class Response:
    status: int
    head: bytes  # the status line and headers, without hop-by-hop headers and the final blank line
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


def read_line(stream: io.BufferedIOBase) -> bytes:
    line = stream.readline(65537)
    if not line.endswith(b"\n"):
        raise Closed(f"connection closed mid-line: {line!r}")
    return line


def read_headers(stream: io.BufferedIOBase) -> list[tuple[str, str]]:
    headers = []
    while (line := read_line(stream)) not in (b"\r\n", b"\n"):
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return headers


def read_request(stream: io.BufferedIOBase) -> Request | None:
    """The next request head, or None when the client closed the connection between requests."""
    first = stream.readline(65537)
    if not first:
        return None
    method, target, version = first.decode("latin-1").split()
    return Request(method, target, version, read_headers(stream))


def read_response(stream: io.BufferedIOBase) -> Response:
    """The next final (non-1xx) response head."""
    while True:
        line = read_line(stream)
        status = int(line.split()[1])
        headers = read_headers(stream)
        if status >= 200:
            kept = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
            head = line.rstrip(b"\r\n") + b"".join(f"\r\n{k}: {v}".encode("latin-1") for k, v in kept)
            return Response(status, head, headers)


def body_chunks(stream: io.BufferedIOBase, headers: list[tuple[str, str]], *, until_close: bool) -> Iterator[bytes]:
    """A message body as raw bytes on the wire (chunked framing included), read piece by piece."""
    lookup = {k.lower(): v for k, v in headers}
    if "chunked" in lookup.get("transfer-encoding", "").lower():
        yield from _chunked(stream)
    elif "content-length" in lookup:
        yield from _exactly(stream, int(lookup["content-length"]))
    elif until_close:
        while piece := stream.read(PIECE):
            yield piece


def _exactly(stream: io.BufferedIOBase, size: int) -> Iterator[bytes]:
    while size > 0:
        piece = stream.read(min(size, PIECE))
        if not piece:
            raise Closed(f"connection closed with {size} body bytes missing")
        size -= len(piece)
        yield piece


def _chunked(stream: io.BufferedIOBase) -> Iterator[bytes]:
    while True:
        line = read_line(stream)
        yield line
        size = int(line.split(b";")[0], 16)
        if size == 0:
            break
        yield from _exactly(stream, size + 2)  # the chunk and its CRLF
    while (line := read_line(stream)) not in (b"\r\n", b"\n"):  # trailers
        yield line
    yield line


def has_body(request: Request, response: Response) -> bool:
    return request.method != "HEAD" and response.status not in (204, 304)


def error_xml(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>faultproxy</RequestId></Error>"
    ).encode()


def local_reply(request: Request, status: int, body: bytes, keep_alive: bool) -> bytes:
    reason = {200: "OK", 500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    body = b"" if request.method == "HEAD" else body
    lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/xml", f"Content-Length: {len(body)}"]
    lines += [] if keep_alive else ["Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --- the proxy -------------------------------------------------------------------------------------------------------


class FaultProxy:
    """``with FaultProxy(moto.endpoint) as proxy:`` -- point the S3 client at ``proxy.url``."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        assert parts.scheme == "http" and parts.hostname and parts.port, f"expected http://host:port, got {upstream}"
        self.upstream = (parts.hostname, parts.port)
        self.rules: list[Rule] = []
        self.exchanges: list[Exchange] = []
        self.lock = threading.Lock()
        self._server = _Server(self)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL,), name="faultproxy", daemon=True)

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()  # joins the connection threads
        self._thread.join()

    def add(
        self,
        fault: Fault,
        method: str | None = None,
        target: str = "",
        *,
        header: str | None = None,
        times: int = 1,
        skip: int = 0,
    ) -> Rule:
        rule = Rule(fault, method, target, header, times, skip)
        with self.lock:
            self.rules.append(rule)
        return rule

    @property
    def connections_accepted(self) -> int:
        return self._server.accepted

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def count(self, method: str | None = None, target: str = "", outcome: str | None = None) -> int:
        """How many requests the proxy saw with this method, target (regex search) and outcome."""
        with self.lock:
            exchanges = list(self.exchanges)
        return sum(
            1
            for e in exchanges
            if (method is None or e.method == method)
            and re.search(target, e.target)
            and (outcome is None or e.outcome == outcome)
        )

    def decide(self, request: Request) -> Fault | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(request):
                    fault = rule.take()
                    if fault is not None:
                        return fault
            return None

    def record(self, request: Request, outcome: str) -> None:
        with self.lock:
            self.exchanges.append(Exchange(request.method, request.target, outcome))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = False  # server_close() joins them
    allow_reuse_address = True

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.connections: set[socket.socket] = set()
        self.accepted = 0
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def close_connections(self) -> None:
        """Unblock every connection thread waiting for a client's next request."""
        with self.connections_lock:
            for sock in self.connections:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(sock)
            self.server.accepted += 1
        try:
            while self._one_request():
                pass
        except (Closed, OSError, ValueError):
            pass  # the client or upstream went away mid-request, or sent something that is not HTTP/1.1
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(sock)

    def _one_request(self) -> bool:
        """Serve one request; whether to keep the connection for another."""
        request = read_request(self.rfile)
        if request is None:
            return False
        if (request.header("expect") or "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        proxy = self.server.proxy
        fault = proxy.decide(request)
        proxy.record(request, "forwarded" if fault is None else type(fault).__name__)
        if isinstance(fault, ErrorReply | ErrorIn200 | DropRequest):
            return self._answer_locally(request, fault)
        return self._forward(request, fault)

    def _answer_locally(self, request: Request, fault: ErrorReply | ErrorIn200 | DropRequest) -> bool:
        for _ in body_chunks(self.rfile, request.headers, until_close=False):
            pass
        if isinstance(fault, DropRequest):
            return False
        status = fault.status if isinstance(fault, ErrorReply) else 200
        self.wfile.write(local_reply(request, status, error_xml(fault.code, fault.message), request.keep_alive()))
        return request.keep_alive()

    def _forward(self, request: Request, fault: Fault | None) -> bool:
        with socket.create_connection(self.server.proxy.upstream, timeout=UPSTREAM_TIMEOUT) as upstream:
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream.sendall(upstream_head(request))
            for piece in body_chunks(self.rfile, request.headers, until_close=False):
                upstream.sendall(piece)
            with upstream.makefile("rb") as stream:
                response = read_response(stream)
                body = body_chunks(stream, response.headers, until_close=True) if has_body(request, response) else None
                if isinstance(fault, LoseResponse):
                    for _ in body or ():
                        pass
                    return False
                return self._relay(request, response, body, fault)

    def _relay(self, request: Request, response: Response, body: Iterator[bytes] | None, fault: Fault | None) -> bool:
        framed = body is None or any(k.lower() in ("content-length", "transfer-encoding") for k, _ in response.headers)
        keep_alive = request.keep_alive() and framed
        self.wfile.write(response.head + (b"\r\n\r\n" if keep_alive else b"\r\nConnection: close\r\n\r\n"))
        budget = fault.keep if isinstance(fault, CutBody) else None
        for piece in body or ():
            if budget is not None and len(piece) >= budget:
                self.wfile.write(piece[:budget])
                return False
            budget = None if budget is None else budget - len(piece)
            self.wfile.write(piece)
        return keep_alive and budget is None


def upstream_head(request: Request) -> bytes:
    headers = [(k, v) for k, v in request.headers if k.lower() not in HOP_BY_HOP] + [("Connection", "close")]
    lines = [f"{request.method} {request.target} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
