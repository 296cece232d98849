"""nginx (Debian's package) as the load balancer in front of registry replicas, started by the test as a child process
with a config file, prefix, pid file and temp paths of its own: `nginx -p ROOT -c nginx.conf -g 'daemon off;'`.

Every request is balanced on its own (no keepalive to the replicas, no affinity), and the upload methods are rotated
so that one upload session crosses replicas: POST goes to the first replica, PATCH to the second and PUT to the third
(each with the others as backups, which take over when it is down); everything else is round-robin over all of them.
The access log is one JSON object a line, with the replica (`upstream`) that answered each request.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .procs import Daemon, free_port, require, wait_until

#: The settings a registry behind nginx needs (README, "HA layout"): stream bodies both ways with no size cap,
#: HTTP/1.1 to the replicas (nginx buffers a chunked body for HTTP/1.0), the client's scheme and host for Location
#: URLs, and timeouts long enough for a big layer over a slow link.
PROXY_SETTINGS = """\
      proxy_http_version 1.1;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 900s;
      proxy_send_timeout 900s;
"""

#: The methods that move an upload session along, each pinned to its own replica (rotated).
UPLOAD_METHODS = ("POST", "PATCH", "PUT")

LOG_FORMAT = (
    '{"method":"$request_method","uri":"$request_uri","status":"$status","upstream":"$upstream_addr",'
    '"upstream_status":"$upstream_status","digest":"$sent_http_docker_content_digest",'
    '"location":"$sent_http_location"}'
)


@dataclass(frozen=True)
class Entry:
    """One line of nginx's access log: `upstream` is the replica that answered (`host:port`; several, comma
    separated, when nginx tried more than one)."""

    method: str
    uri: str
    status: int
    upstream: str
    upstream_status: str
    digest: str
    location: str

    @property
    def replica(self) -> str:
        """The replica that gave the answer: the last one nginx tried."""
        return self.upstream.split(",")[-1].strip()


def _pool(name: str, replicas: Sequence[str], first: int) -> str:
    ordered = [*replicas[first:], *replicas[:first]]
    servers = [f"    server {ordered[0]} max_fails=1 fail_timeout=60s;"]
    servers += [f"    server {address} backup;" for address in ordered[1:]]
    return f"  upstream {name} {{\n" + "\n".join(servers) + "\n  }\n"


def upstreams(replicas: Sequence[str]) -> str:
    """`replicas` round-robin for reads, plus one pool per upload method, each led by a different replica."""
    pools = "  upstream replicas {\n" + "".join(f"    server {a} max_fails=1 fail_timeout=60s;\n" for a in replicas)
    pools += "  }\n"
    pools += "".join(_pool(method.lower(), replicas, i % len(replicas)) for i, method in enumerate(UPLOAD_METHODS))
    cases = "".join(f"    {method} {method.lower()};\n" for method in UPLOAD_METHODS)
    return pools + f"  map $request_method $pool {{\n{cases}    default replicas;\n  }}\n"


def _server(listen: str, tls: tuple[Path, Path] | None, token_replica: str | None) -> str:
    ssl_lines = f"    ssl_certificate {tls[0]};\n    ssl_certificate_key {tls[1]};\n" if tls else ""
    token = ""
    if token_replica is not None:
        token = f"    location /auth/ {{\n      proxy_pass http://{token_replica};\n{PROXY_SETTINGS}    }}\n"
    return (
        f"  server {{\n    listen {listen}{' ssl' if tls else ''};\n{ssl_lines}"
        "    client_max_body_size 0;\n    chunked_transfer_encoding on;\n"
        f"    location / {{\n      proxy_pass http://$pool;\n{PROXY_SETTINGS}    }}\n{token}  }}\n"
    )


def render(
    root: Path,
    port: int,
    replicas: Sequence[str],
    *,
    tls_port: int | None = None,
    tls: tuple[Path, Path] | None = None,
    token_replica: str | None = None,
) -> str:
    """nginx.conf: plain HTTP on `port` (and TLS on `tls_port` with the certificate and key `tls`); `/auth/` goes to
    `token_replica` alone when given (the token service on one replica, the registry API on the others)."""
    temp = "".join(f"  {kind}_temp_path {root / 'temp' / kind};\n" for kind in ("client_body", "proxy", "fastcgi"))
    temp += "".join(f"  {kind}_temp_path {root / 'temp' / kind};\n" for kind in ("uwsgi", "scgi"))
    servers = _server(f"127.0.0.1:{port}", None, token_replica)
    if tls_port is not None:
        servers += _server(f"127.0.0.1:{tls_port}", tls, token_replica)
    return (
        f"worker_processes 1;\npid {root / 'nginx.pid'};\nerror_log {root / 'error.log'} info;\n"
        "events {\n  worker_connections 1024;\n}\n"
        f"http {{\n{temp}  log_format replicas escape=json '{LOG_FORMAT}';\n"
        f"  access_log {root / 'access.log'} replicas;\n{upstreams(replicas)}{servers}}}\n"
    )


class Nginx:
    """nginx in front of `replicas` (`host:port` each) on a free loopback port, and one for TLS when `tls` (a
    certificate and key for 127.0.0.1) is given; `client_tls` is then what a client trusts."""

    def __init__(
        self,
        root: Path,
        replicas: Sequence[str],
        *,
        tls: tuple[Path, Path] | None = None,
        token_replica: str | None = None,
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        (root / "temp").mkdir(exist_ok=True)
        self.root = root
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.tls_port = free_port() if tls else None
        self.config = root / "nginx.conf"
        self.config.write_text(
            render(root, self.port, replicas, tls_port=self.tls_port, tls=tls, token_replica=token_replica)
        )
        self.access_log = root / "access.log"
        self.log_path = root / "error.log"
        self.log_title = "nginx"
        args = [require("nginx"), "-p", str(root), "-c", str(self.config), "-g", "daemon off;"]
        self.daemon = Daemon("nginx", args, root / "nginx.out")

    def start(self) -> None:
        self.daemon.start()
        wait_until(self._answers, what=f"nginx on {self.url}", daemon=self.daemon)

    def stop(self) -> None:
        self.daemon.stop()

    def _answers(self) -> bool:
        try:
            httpx.get(f"{self.url}/nginx-ready", timeout=2, trust_env=False)
            return True
        except httpx.HTTPError:
            return False

    def tls_url(self) -> str:
        assert self.tls_port is not None, "nginx was started without TLS"
        return f"https://127.0.0.1:{self.tls_port}"

    def entries(self) -> list[Entry]:
        """Every request nginx has logged so far (it writes a line when a request ends)."""
        if not self.access_log.exists():
            return []
        return [_entry(json.loads(line)) for line in self.access_log.read_text().splitlines() if line.strip()]


def _entry(fields: dict[str, Any]) -> Entry:
    status = fields["status"]
    return Entry(
        fields["method"],
        fields["uri"],
        int(status),
        fields["upstream"],
        fields["upstream_status"],
        fields["digest"],
        fields["location"],
    )
