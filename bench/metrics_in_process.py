"""``bench/metrics.py``'s steady half: the same app with metrics off and on, in this process, taking turns in batches,
the CPU time per operation (``time.process_time``) the median of the batches: a busy machine slows both alike.

Manifest GET is one ASGI call per request (no HTTP client or server around it: the handler's own cost, the worst
case for a fixed per-request cost); a push is one image through httpx's ASGI transport (config and layer each a
monolithic ``POST ?digest=``, then the manifest ``PUT``), storage and database included.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import logging.config
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from starlette.applications import Starlette

from registry.app import create_app
from registry.config import load_config
from registry.db import migrate
from registry.db.engine import Database
from registry.events import logformat

METRICS_ON = {"REGISTRY_HTTP_DEBUG_ADDR": "127.0.0.1:5001", "REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED": "true"}
NO_ACCESS_LOG = {"REGISTRY_LOG_ACCESSLOG_DISABLED": "true"}
VARIANTS = {  # the access log, on by default, builds the request record metrics read too
    "metrics off": NO_ACCESS_LOG,
    "metrics on": {**NO_ACCESS_LOG, **METRICS_ON},
    "access log": {},
    "access log + metrics": METRICS_ON,
}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
GET_SCOPE: dict[str, Any] = {
    "type": "http",
    "method": "GET",
    "path": "/v2/bench/app/manifests/v1",
    "raw_path": b"/v2/bench/app/manifests/v1",
    "query_string": b"",
    "headers": [(b"host", b"registry.test"), (b"accept", OCI_MANIFEST.encode())],
    "client": ("127.0.0.1", 40000),
    "server": ("127.0.0.1", 5000),
    "scheme": "http",
    "http_version": "1.1",
    "root_path": "",
}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    return None


async def _started(stack: contextlib.AsyncExitStack, env: dict[str, str]) -> tuple[Starlette, httpx.AsyncClient]:
    tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-metrics-"))
    environ = {
        "REGISTRY_STORAGE": "filesystem",
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": f"{tmp}/data",
        "REGISTRY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/registry.db",
        **env,
    }
    config = load_config(None, environ)
    database = Database(config.database_url)
    stack.push_async_callback(database.dispose)
    await migrate.upgrade(database)
    app = create_app(config, database=database)
    await stack.enter_async_context(app.router.lifespan_context(app))
    transport = httpx.ASGITransport(app=app)
    client = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://registry.test"))
    await push(client, "bench/app", "v1", b"layer")
    return app, client


async def push(client: httpx.AsyncClient, repo: str, tag: str, layer: bytes) -> None:
    config = b'{"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}'
    descriptors = []
    for media_type, data in (("application/vnd.oci.image.config.v1+json", config), (OCI_MANIFEST + ".layer", layer)):
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        response = await client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
        assert response.status_code == 201, response.text
        descriptors.append({"mediaType": media_type, "digest": digest, "size": len(data)})
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptors[0], "layers": descriptors[1:]}
    body = json.dumps(manifest).encode()
    response = await client.put(f"/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text


def _log_to_devnull() -> None:
    logging.config.dictConfig(logformat.log_config("text", {}, logging.INFO))
    logging.getLogger().handlers[0].setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the process's life
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the bench's own client: not the server's access log


async def _cpu_per_call(work: Callable[[int], Awaitable[None]], count: int) -> float:
    started = time.process_time()
    for index in range(count):
        await work(index)
    return (time.process_time() - started) / count


async def measure(batches: int = 15, gets: int = 1000, pushes: int = 20) -> dict[str, dict[str, float]]:
    """Per variant (``VARIANTS``): microseconds of CPU per manifest GET and per push. The access log goes to
    /dev/null, formatted (``logformat``'s text format, at info)."""
    _log_to_devnull()
    async with contextlib.AsyncExitStack() as stack:
        variants = {name: await _started(stack, env) for name, env in VARIANTS.items()}
        samples: dict[str, dict[str, list[float]]] = {name: {"get": [], "push": []} for name in variants}
        for _ in range(batches):  # the GETs first, the pushes after: the garbage of one never lands on the other
            for name, (app, _client) in variants.items():

                async def get(index: int, app: Starlette = app) -> None:
                    await app({**GET_SCOPE, "state": {}}, _receive, _send)

                samples[name]["get"].append(await _cpu_per_call(get, gets))
        for batch in range(batches):
            for name, (_app, client) in variants.items():

                async def one_push(index: int, client: httpx.AsyncClient = client, batch: int = batch) -> None:
                    await push(client, f"bench/b{batch}", f"t{index}", f"layer {batch} {index}".encode() * 64)

                samples[name]["push"].append(await _cpu_per_call(one_push, pushes))
    return {name: {kind: statistics.median(values) * 1e6 for kind, values in s.items()} for name, s in samples.items()}
