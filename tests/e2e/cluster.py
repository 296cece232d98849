"""Registry replicas sharing one PostgreSQL database and one S3 bucket (moto), behind nginx (`nginx.py`).

The replicas reach S3 through one `HoldingProxy`, a fault proxy that can also hold one matching request until the
test lets it go: the way to catch a replica in the middle of a request and kill it there. The replicas name the same
endpoint (a database records the storage it indexes and refuses another) but each signs with an access key of its
own (moto takes any), so a held request tells which replica sent it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from tests.faultproxy import DropRequest, Fault, FaultProxy, Request
from tests.s3server import MotoServer

from .nginx import Nginx
from .procs import missing
from .server import RegistryServer, merge

HOLD_TIMEOUT = 120.0


class HoldingProxy(FaultProxy):
    """A FaultProxy that, once armed with `hold(method, target)`, keeps the next matching request waiting until
    `release()`; the request is then dropped (its sender is expected to be gone by then)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.armed: tuple[str, str] | None = None
        self.holding = threading.Event()
        self.released = threading.Event()
        self.held: Request | None = None

    def hold(self, method: str, target: str) -> None:
        self.armed = (method, target)

    def release(self) -> None:
        self.armed = None
        self.released.set()

    def decide(self, request: Request) -> Fault | None:
        armed = self.armed
        if armed is not None and request.method == armed[0] and re.search(armed[1], request.target):
            self.armed = None
            self.held = request
            self.holding.set()
            self.released.wait(HOLD_TIMEOUT)
            return DropRequest()
        return super().decide(request)


@dataclass
class Replica:
    server: RegistryServer
    accesskey: str

    @property
    def address(self) -> str:
        return self.server.host

    def kill(self) -> None:
        """SIGKILL, as a machine dying would: no shutdown code runs."""
        daemon = self.server.daemon
        assert daemon is not None and not daemon.exited(), f"replica {self.address} is not running"
        os.killpg(daemon.pid, signal.SIGKILL)
        assert daemon.proc is not None
        daemon.proc.wait()


@dataclass
class Cluster:
    replicas: list[Replica]
    nginx: Nginx
    proxy: HoldingProxy
    moto: MotoServer
    bucket: str

    @property
    def host(self) -> str:
        return self.nginx.host

    def by_address(self, address: str) -> Replica:
        return next(replica for replica in self.replicas if replica.address == address)

    def sender(self, request: Request) -> Replica:
        """The replica that signed an S3 request (by its access key)."""
        credential = request.header("authorization") or ""
        return next(r for r in self.replicas if f"Credential={r.accesskey}/" in credential)


def replica_config(database_url: str, moto: MotoServer, bucket: str, endpoint: str, key: str) -> dict[str, Any]:
    """What every replica shares: the database, the bucket (reached through the proxy at `endpoint`)."""
    params = moto.driver_params(bucket, regionendpoint=endpoint, accesskey=key)
    return {
        "database": {"url": database_url},
        "storage": {"s3": params, "delete": {"enabled": True}, "redirect": {"disable": True}},
    }


def make_replica(root: Path, config: Mapping[str, Any]) -> Replica:
    server = RegistryServer(root, "ours")
    assert server.config is not None
    written = yaml.safe_load(server.config.read_text())
    del written["storage"]  # the filesystem section the e2e default writes: S3 replaces it
    server.config.write_text(yaml.safe_dump(merge(written, config), sort_keys=False))
    server.env.pop("AWS_CA_BUNDLE", None)
    return Replica(server, config["storage"]["s3"]["accesskey"])


@contextlib.contextmanager
def cluster(
    root: Path,
    database_url: str,
    moto: MotoServer,
    *,
    count: int = 3,
    extra: Mapping[str, Any] | None = None,
    tls: tuple[Path, Path] | None = None,
    token_replica: bool = False,
) -> Iterator[Cluster]:
    """`count` replicas on one database and one new bucket, behind nginx. With `token_replica`, nginx sends
    `/auth/` to the first replica alone and the registry API to the others."""
    bucket = moto.create_bucket()
    with contextlib.ExitStack() as stack:
        proxy = HoldingProxy(moto.endpoint)
        stack.enter_context(proxy)
        stack.callback(proxy.release)  # before the proxy stops: a held request must not keep it waiting
        replicas = []
        for n in range(count):
            config = merge(replica_config(database_url, moto, bucket, proxy.url, f"REPLICA{n}KEY"), extra or {})
            replicas.append(make_replica(root / f"replica-{n}", config))
        for replica in replicas:
            stack.callback(replica.server.stop)
            replica.server.start()
        api = replicas[1:] if token_replica else replicas
        nginx = Nginx(
            root / "nginx",
            [r.address for r in api],
            tls=tls,
            token_replica=replicas[0].address if token_replica else None,
        )
        stack.callback(nginx.stop)
        nginx.start()
        yield Cluster(replicas, nginx, proxy, moto, bucket)


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def postgres_database(admin: str | None = None) -> Iterator[str]:
    """A fresh database on the server `admin` names, by default the one scripts/test.sh starts
    (REGISTRY_TEST_POSTGRES), dropped afterwards."""
    admin = admin or os.environ.get("REGISTRY_TEST_POSTGRES")
    if not admin:
        missing("REGISTRY_TEST_POSTGRES (a PostgreSQL server URL; scripts/test.sh starts one)")
    name = f"registry_ha_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_admin(admin, f'DROP DATABASE "{name}" WITH (FORCE)'))
