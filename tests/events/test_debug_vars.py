"""``/debug/vars`` on the debug server (``registry.events.debug_vars``): expvar's JSON as distribution serves it there,
with Python's figures."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from registry import __version__
from registry.events.debug import debug_app
from tests.conftest import make_config

DEBUG_ON = {"REGISTRY_HTTP_DEBUG_ADDR": "127.0.0.1:5001"}


async def get_vars(tmp_path: Path, workers: int) -> httpx.Response:
    (tmp_path / "debug" / "health").mkdir(parents=True, exist_ok=True)
    app = debug_app(make_config(tmp_path, "inmemory", **DEBUG_ON), str(tmp_path / "debug"), None, workers)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://debug") as c:
        return await c.get("/debug/vars")


async def test_debug_vars_has_expvars_cmdline_and_memstats(tmp_path: Path) -> None:
    response = await get_vars(tmp_path, workers=3)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    found = response.json()
    assert found["cmdline"] == sys.argv
    memstats = found["memstats"]
    assert memstats["rss"] > 0 and memstats["maxrss"] > 0 and memstats["threads"] >= 1
    assert len(memstats["gc"]["collections"]) == len(memstats["gc"]["counts"]) == 3
    registry = found["registry"]
    assert (registry["version"], registry["workers"]) == (__version__, 3)
    assert registry["uptime"] >= 0
    serving = registry["processes"][0]
    assert serving["pid"] == os.getpid() and serving["rss"] > 0


@pytest.fixture
def child() -> Iterator[int]:
    """A child process of this one (as a worker is of the serving process), until the test ends."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("no /proc")
    with subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE) as process:
        assert process.stdin is not None
        with process.stdin:
            yield process.pid


async def test_the_workers_processes_are_listed(tmp_path: Path, child: int) -> None:
    processes = (await get_vars(tmp_path, workers=2)).json()["registry"]["processes"]
    pids = {process["pid"]: process["rss"] for process in processes}
    assert child in pids and pids[child] > 0
