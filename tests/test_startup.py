"""What ``registry serve`` loads: with the default setup (filesystem storage, SQLite, no auth) none of the heavy
libraries that only other configurations need, nor Alembic: a new SQLite database takes the head schema directly,
and only a database an older revision made is migrated, in a forked child; so that they never cost start-up time
or memory. And the garbage collector, off while it starts, is on again once the app has started, with all that
start-up made frozen."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from registry.cli import main
from registry.db import migrate
from tests.conftest import migrated_by_alembic

# each was once imported on the default path: S3's client, token auth, migrations, the async engine and the ORM,
# websockets
NOT_ON_THE_DEFAULT_PATH = (
    "boto3",
    "botocore",
    "cryptography",
    "alembic",
    "sqlalchemy.ext.asyncio",
    "aiosqlite",
    "sqlalchemy.orm",
    "websockets",
)

# the real `python -m registry serve`, stopped by SIGTERM after its first 200 on /v2/; then the heavy modules it
# loaded, and the collector's state
SERVE_ONCE = """
import gc, http.client, os, signal, sys, threading, time
STARTED = %r
from registry.__main__ import main

def stop_after_first_200(port):
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/v2/")
            if connection.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.02)
    print("answered", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)

def fork():
    print("forked", flush=True)
    return real_fork()

real_fork, os.fork = os.fork, fork
config, port, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
threading.Thread(target=stop_after_first_200, args=(port,), daemon=True).start()
sys.argv = ["registry", "serve", config]
try:
    main()
finally:
    print("loaded:", *[name for name in names if name in sys.modules], flush=True)
    print("collecting:", gc.isenabled(), "frozen:", gc.get_freeze_count() > 0, flush=True)
    walked = {id(o) for o in gc.get_objects()}  # the frozen are not
    print("walked:", *[name for name in STARTED if id(sys.modules[name]) in walked], flush=True)
"""
# imported as uvicorn starts the app: frozen with what start-up made, never walked by a collection
STARTED = ("uvicorn.lifespan.on", "uvloop.loop")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(tmp_path: Path, port: int) -> str:
    path = tmp_path / "config.yml"
    data = tmp_path / "data"
    path.write_text(
        "version: 0.1\nlog:\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {data}\nhttp:\n  addr: 127.0.0.1:{port}\n"
        f"database:\n  url: sqlite+aiosqlite:///{data}/registry.db\n"
    )
    return str(path)


@pytest.mark.parametrize("database", ["new", "at head", "at 0001"])
def test_serve_with_the_default_setup_loads_no_heavy_library_and_collects_garbage(
    tmp_path: Path, database: str
) -> None:
    assert all(importlib.util.find_spec(name) for name in NOT_ON_THE_DEFAULT_PATH)  # installed: absence means lazy
    port = _free_port()
    config = _config(tmp_path, port)
    if database == "at head":
        main(["migrate", config])  # a restart: no Alembic at all
    elif database == "at 0001":
        asyncio.run(migrated_by_alembic(tmp_path / "data" / "registry.db", "0001"))
    args = [sys.executable, "-c", SERVE_ONCE % (STARTED,), config, str(port), *NOT_ON_THE_DEFAULT_PATH]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    expected = ["answered", "loaded:", "collecting: True frozen: True", "walked:"]
    if database == "at 0001":  # Alembic migrates it, in a child
        expected.insert(0, "forked")
    assert done.stdout.splitlines() == expected, done.stdout + done.stderr
    with closing(sqlite3.connect(tmp_path / "data" / "registry.db")) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrate.HEAD_REVISION,)]


def test_serve_stops_when_migrating_fails(tmp_path: Path) -> None:
    config = _config(tmp_path, _free_port())
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "registry.db").write_bytes(b"not a database\n" * 512)
    args = [sys.executable, "-m", "registry", "serve", config]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[1])
    assert done.returncode == 1, done.stderr
    assert "file is not a database" in done.stderr and "migrating the database failed" in done.stderr, done.stderr
