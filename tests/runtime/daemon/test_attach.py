"""attach in-process: the 101 hijack, output as stdcopy frames from the moment of attaching until the container's
exit, stdin piped with the client's half-close closing it; and a wait that a removal ends."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from asyncio.subprocess import PIPE

import pytest

from runtime.daemon.supervisor import Supervisor
from runtime.store import write_json_atomic

from .conftest import Daemon
from .test_containers import CID, EXITED, frames, write_container

ATTACH = (
    "POST /v1.41/containers/web/attach?stream=1&stdout=1&stderr=1{extra} HTTP/1.1\r\n"
    "Host: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
)


def supervisor(daemon: Daemon) -> Supervisor:
    found = daemon.context.supervisor
    assert found is not None
    return found


async def upgraded(daemon: Daemon, extra: str = "") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_unix_connection(str(daemon.socket))
    writer.write(ATTACH.format(extra=extra).encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n"), head
    return reader, writer


def append_log(daemon: Daemon, *records: tuple[str, str]) -> None:
    with (daemon.context.store.container_dir(CID) / "log.json").open("a") as f:
        for stream, text in records:
            f.write(json.dumps({"log": text, "stream": stream, "time": "2026-01-01T00:00:09Z"}) + "\n")


async def test_attach_streams_what_is_written_after_it_until_the_exit(started: Daemon) -> None:
    write_container(started, {"status": "created"})
    reader, writer = await upgraded(started)
    append_log(started, ("stderr", "err\n"), ("stdout", "out\n"))
    supervisor(started).exits[CID].fire(3)
    body = await reader.read()  # the daemon closes the connection once the exit is reported and the log drained
    writer.close()
    assert frames(body) == [(2, b"err\n"), (1, b"out\n")]  # not the three records written before attaching


async def test_attach_logs_1_replays_the_log_first(started: Daemon) -> None:
    write_container(started, {"status": "created"})
    reader, writer = await upgraded(started, "&logs=1")
    supervisor(started).exits[CID].fire(0)
    body = await reader.read()
    writer.close()
    assert frames(body) == [(1, b"one\n"), (2, b"warn\n"), (1, b"two\n")]


async def test_stdin_reaches_the_pipe_and_the_half_close_closes_it(started: Daemon) -> None:
    docker = {"Image": "x", "OpenStdin": True, "StdinOnce": True, "AttachStdin": True}
    write_container(started, {"status": "created"}, docker)
    reader, writer = await upgraded(started, "&stdin=1")
    writer.write(b"line 1\nline 2\n")
    writer.write_eof()
    read_end = supervisor(started).stdin[CID][0]
    received = await asyncio.wait_for(asyncio.to_thread(read_all, read_end), 60)  # guards a hang, times nothing
    assert received == b"line 1\nline 2\n"
    supervisor(started).exits[CID].fire(0)
    assert await reader.read() == b""
    writer.close()


def read_all(fd: int) -> bytes:
    parts = []
    while chunk := os.read(fd, 65536):
        parts.append(chunk)
    return b"".join(parts)


@pytest.mark.skipif(
    os.geteuid() != 0 or (shutil.which("runc") is None and shutil.which("crun") is None),
    reason="rm asks the OCI runtime and unmounts: root",
)
async def test_a_wait_for_removal_ends_when_the_container_is_removed(started: Daemon) -> None:
    write_container(started, EXITED)
    wait = {"condition": "removed"}
    async with (
        started.client() as waiter,
        started.client() as other,
        waiter.stream("POST", "/v1.41/containers/web/wait", params=wait) as r,
    ):
        assert r.status_code == 200  # the status comes first, the body at the removal
        assert (await other.delete("/v1.41/containers/web")).status_code == 204
        body = await r.aread()
    assert json.loads(body) == {"Error": None, "StatusCode": 7}
    assert not started.context.store.container_dir(CID).exists()


@pytest.mark.skipif(shutil.which("runc") is None and shutil.which("crun") is None, reason="start finds the OCI runtime")
async def test_a_start_that_fails_answers_the_waiters_too(started: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    write_container(started, {"status": "created"})

    def broken(*args: object) -> None:
        raise OSError("mount overlay: no space left on device")

    monkeypatch.setattr(Supervisor, "_launch", broken)
    async with (
        started.client() as waiter,
        started.client() as other,
        waiter.stream("POST", "/v1.41/containers/web/wait", params={"condition": "next-exit"}) as r,
    ):
        start = await other.post("/v1.41/containers/web/start")
        body = await r.aread()
    assert start.status_code == 500 and "no space left" in start.json()["message"]
    assert json.loads(body)["StatusCode"] == 255


async def test_a_wait_on_a_container_the_daemon_did_not_start_ends_with_its_monitor(started: Daemon) -> None:
    """`runtime run -d` (the CLI, no daemon) started it: the daemon watches its monitor from the first wait on."""
    shell = await asyncio.create_subprocess_exec("sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!", stdout=PIPE)
    pid = int((await shell.communicate())[0])  # an orphan, as a monitor is to a daemon that did not start it
    path = write_container(started, {"status": "running", "pid": pid, "monitor_pid": pid})
    async with started.client() as client, client.stream("POST", "/v1.41/containers/web/wait") as r:
        assert r.status_code == 200
        write_json_atomic(path / "state.json", {"status": "exited", "exit_code": 9})  # what the monitor leaves
        os.kill(pid, signal.SIGKILL)
        body = await r.aread()
    assert json.loads(body) == {"Error": None, "StatusCode": 9}
