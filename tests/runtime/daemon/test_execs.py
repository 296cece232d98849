"""Exec instances in-process (the process itself is e2e): created only in a running container, inspected, refused."""

from __future__ import annotations

import os

from runtime.daemon import containers as container_routes
from runtime.daemon import execs

from .conftest import Daemon
from .test_containers import EXITED, write_container

RUNNING = {"status": "running", "pid": os.getpid(), "monitor_pid": os.getpid()}  # a live pid reads as running


async def test_an_exec_is_created_in_a_running_container_and_inspected(started: Daemon) -> None:
    await started.stop()
    await started.start([*container_routes.ROUTES, *execs.ROUTES])
    write_container(started, RUNNING)
    async with started.client() as client:
        made = await client.post("/v1.41/containers/web/exec", json={"Cmd": ["id"], "AttachStdout": True, "Tty": True})
        doc = (await client.get(f"/v1.41/exec/{made.json()['Id']}/json")).json()
        resized = await client.post(f"/v1.41/exec/{made.json()['Id']}/resize", params={"h": "30", "w": "80"})
    assert made.status_code == 201
    assert (doc["Running"], doc["ExitCode"], doc["OpenStdout"], doc["OpenStderr"]) == (False, None, True, False)
    assert doc["ProcessConfig"]["entrypoint"] == "id" and doc["ProcessConfig"]["tty"] is True
    assert resized.status_code == 201


async def test_exec_refusals(started: Daemon) -> None:
    await started.stop()
    await started.start([*container_routes.ROUTES, *execs.ROUTES])
    write_container(started, EXITED)
    async with started.client() as client:
        stopped = await client.post("/v1.41/containers/web/exec", json={"Cmd": ["id"]})
        missing = await client.post("/v1.41/containers/nosuch/exec", json={"Cmd": ["id"]})
        unknown = await client.post("/v1.41/exec/nosuch/start", json={})
        unknown_json = await client.get("/v1.41/exec/nosuch/json")
    assert (stopped.status_code, missing.status_code, unknown.status_code) == (409, 404, 404)
    assert unknown_json.json() == {"message": "No such exec instance: nosuch"}
    assert missing.json() == {"message": "No such container: nosuch"}


async def test_an_exec_needs_a_command(started: Daemon) -> None:
    await started.stop()
    await started.start([*container_routes.ROUTES, *execs.ROUTES])
    write_container(started, RUNNING)
    async with started.client() as client:
        none = await client.post("/v1.41/containers/web/exec", json={"AttachStdout": True})
        bad = await client.post("/v1.41/containers/web/exec", json={"Cmd": "id", "User": 5})
    assert (none.status_code, bad.status_code) == (400, 400)
    assert none.json() == {"message": "No exec command specified"}
