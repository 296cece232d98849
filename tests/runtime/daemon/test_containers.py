"""Container routes in-process, over containers written to a private store as the monitor leaves them (no runc):
inspect and ps fields, logs (stdcopy frames, tail, timestamps, stream choice), wait, and the errors."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from runtime import spec
from runtime.daemon import dockerconfig
from runtime.daemon.http import ApiError
from runtime.store import write_json_atomic

from .conftest import Daemon

CID = "ab" * 32
LOG = [
    {"log": "one\n", "stream": "stdout", "time": "2026-01-01T00:00:01.000000001Z"},
    {"log": "warn\n", "stream": "stderr", "time": "2026-01-01T00:00:02.000000002Z"},
    {"log": "two\n", "stream": "stdout", "time": "2026-01-01T00:00:03.000000003Z"},
]


def write_container(daemon: Daemon, state: dict[str, Any], docker: dict[str, Any] | None = None) -> Path:
    store = daemon.context.store
    path = store.container_dir(CID)
    path.mkdir(parents=True)
    record = {"id": CID, "name": "web", "image": "127.0.0.1:5000/bb:1", "manifest": "sha256:" + "0" * 64,
              "diff_ids": [], "created": "2026-01-01T00:00:00+00:00", "args": ["sh", "-c", "echo one"],
              "options": {"network": "none"}}  # fmt: skip
    write_json_atomic(path / "container.json", record)
    write_json_atomic(path / "state.json", state)
    (path / "log.json").write_text("".join(json.dumps(r) + "\n" for r in LOG))
    dockerconfig.save(path, docker or {"Image": "127.0.0.1:5000/bb:1", "Tty": False, "HostConfig": {}})
    return path


EXITED = {"status": "exited", "exit_code": 7, "started_at": "2026-01-01T00:00:01+00:00",
          "finished_at": "2026-01-01T00:00:04+00:00"}  # fmt: skip


def frames(data: bytes) -> list[tuple[int, bytes]]:
    found = []
    while data:
        stream, size = struct.unpack(">BxxxI", data[:8])
        found.append((stream, data[8 : 8 + size]))
        data = data[8 + size :]
    return found


async def test_inspect_shows_state_exit_code_and_config(started: Daemon) -> None:
    write_container(started, EXITED)
    async with started.client() as client:
        doc = (await client.get("/v1.41/containers/web/json")).json()
    assert doc["Id"] == CID and doc["Name"] == "/web" and doc["Path"] == "sh" and doc["Args"] == ["-c", "echo one"]
    assert doc["State"]["Status"] == "exited" and doc["State"]["ExitCode"] == 7 and not doc["State"]["Running"]
    assert doc["State"]["FinishedAt"].startswith("2026-01-01T00:00:04")
    assert doc["Config"]["Tty"] is False and doc["HostConfig"]["NetworkMode"] == "none"


async def test_ps_lists_running_only_unless_all(started: Daemon) -> None:
    write_container(started, EXITED)
    async with started.client() as client:
        running = (await client.get("/v1.41/containers/json")).json()
        everything = (await client.get("/v1.41/containers/json", params={"all": "1"})).json()
        filtered = (
            await client.get("/v1.41/containers/json", params={"all": "1", "filters": '{"status": ["running"]}'})
        ).json()
    assert running == [] and filtered == []
    assert everything[0]["Names"] == ["/web"] and everything[0]["State"] == "exited"
    assert everything[0]["Status"].startswith("Exited (7) ")
    assert everything[0]["Command"] == "sh -c 'echo one'"


async def test_logs_are_stdcopy_frames_with_tail_timestamps_and_stream_choice(started: Daemon) -> None:
    write_container(started, EXITED)
    async with started.client() as client:
        both = await client.get(f"/v1.41/containers/{CID}/logs", params={"stdout": "1", "stderr": "1"})
        tail = await client.get("/containers/web/logs", params={"stdout": "1", "tail": "1", "timestamps": "1"})
        errs = await client.get("/containers/web/logs", params={"stderr": "1"})
        none = await client.get("/containers/web/logs")
    assert frames(both.content) == [(1, b"one\n"), (2, b"warn\n"), (1, b"two\n")]
    assert frames(tail.content) == [(1, b"2026-01-01T00:00:03.000000003Z two\n")]
    assert frames(errs.content) == [(2, b"warn\n")]
    assert none.status_code == 400


async def test_a_tty_containers_logs_are_bare_bytes(started: Daemon) -> None:
    write_container(started, EXITED, {"Image": "x", "Tty": True})
    async with started.client() as client:
        r = await client.get("/containers/web/logs", params={"stdout": "1", "stderr": "1"})
    assert r.content == b"one\nwarn\ntwo\n"


async def test_wait_not_running_answers_the_exit_code_at_once(started: Daemon) -> None:
    write_container(started, EXITED)
    async with started.client() as client:
        r = await client.post("/v1.41/containers/web/wait", params={"condition": "not-running"})
        bad = await client.post("/v1.41/containers/web/wait", params={"condition": "sometime"})
    assert r.json() == {"Error": None, "StatusCode": 7}
    assert bad.status_code == 400


async def test_an_unknown_container_is_a_404_on_every_route(started: Daemon) -> None:
    async with started.client() as client:
        answers = [
            await client.get("/v1.41/containers/nosuch/json"),
            await client.post("/v1.41/containers/nosuch/start"),
            await client.post("/v1.41/containers/nosuch/wait"),
            await client.post("/v1.41/containers/nosuch/stop"),
            await client.post("/v1.41/containers/nosuch/kill"),
            await client.delete("/v1.41/containers/nosuch"),
            await client.get("/v1.41/containers/nosuch/logs", params={"stdout": "1"}),
            await client.post("/v1.41/containers/nosuch/attach", params={"stream": "1", "stdout": "1"}),
        ]
    assert [r.status_code for r in answers] == [404] * len(answers)
    assert answers[0].json() == {"message": "No such container: nosuch"}


async def test_create_refuses_bad_bodies_and_unknown_images(started: Daemon) -> None:
    async with started.client() as client:
        bad_json = await client.post("/v1.41/containers/create", content=b"{")
        no_image = await client.post("/v1.41/containers/create", json={"Cmd": ["true"]})
        unknown = await client.post("/v1.41/containers/create", json={"Image": "127.0.0.1:5000/none:1"})
        bad_name = await client.post("/v1.41/containers/create?name=a%20b", json={"Image": "x"})
        bad_net = await client.post("/v1.41/containers/create", json={"Image": "x", "HostConfig": {"NetworkMode": "q"}})
        bad_ref = await client.post("/v1.41/containers/create", json={"Image": "Not A Reference"})
        statuses = [r.status_code for r in (bad_json, no_image, unknown, bad_name, bad_net, bad_ref)]
    assert statuses == [400, 400, 404, 400, 400, 400]
    assert unknown.json() == {"message": "No such image: 127.0.0.1:5000/none:1"}


def test_the_create_body_maps_onto_run_options() -> None:
    body = {"Image": "x", "Cmd": ["a", "b"], "Entrypoint": ["/bin/tool", "--flag"], "Env": ["K=V"], "User": "1000",
            "WorkingDir": "/w", "HostConfig": {"NetworkMode": "host", "Binds": ["/h:/c:ro"], "Memory": 0,
                                               "PidsLimit": 64, "AutoRemove": True}}  # fmt: skip
    opts = dockerconfig.run_options(body, "/named")
    assert (opts.entrypoint, opts.command) == ("/bin/tool", ["--flag", "a", "b"])
    assert (opts.env, opts.user, opts.workdir, opts.name) == (["K=V"], "1000", "/w", "named")
    assert (opts.network, opts.volumes, opts.memory, opts.pids_limit) == ("host", ["/h:/c:ro"], None, 64)
    assert dockerconfig.run_options({"Image": "x", "Entrypoint": [""]}, None).entrypoint == ""
    assert dockerconfig.run_options({"Image": "x", "HostConfig": {"NetworkMode": "default"}}, None).network == "none"
    as_sent = {"PortBindings": {}, "Privileged": False, "CapAdd": None, "Devices": [], "Links": None}  # docker 20.10's
    assert dockerconfig.run_options({"Image": "x", "HostConfig": as_sent}, None).network == "none"
    ports = {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}}
    for bad in ({"Env": [1]}, {"WorkingDir": "relative"}, {"User": 0}, {"HostConfig": {"Memory": "1g"}},
                {"HostConfig": ports}, {"HostConfig": {"Privileged": True}}, {"WorkingDir": "/a\0b"},
                {"Env": ["A=\0"]}, {"User": "a\0"}, {"HostConfig": {"Binds": ["/a:/b\0"]}}):  # fmt: skip
        with pytest.raises(ApiError) as caught:
            dockerconfig.run_options({"Image": "x", **bad}, None)
        assert caught.value.status == 400


def test_a_tty_asks_for_a_terminal_of_the_clients_size_and_term_xterm() -> None:
    opts = dockerconfig.run_options({"Image": "x", "Tty": True, "HostConfig": {"ConsoleSize": [31, 97]}}, None)
    assert (opts.tty, opts.console_size, opts.env) == (True, [31, 97], ["TERM=xterm"])
    assert spec.console_size(opts) == {"consoleSize": {"height": 31, "width": 97}}
    plain = dockerconfig.run_options({"Image": "x", "HostConfig": {"ConsoleSize": [0, 0]}}, None)
    assert (plain.tty, plain.console_size, plain.env, spec.console_size(plain)) == (False, None, [], {})
    with pytest.raises(ApiError):
        dockerconfig.run_options({"Image": "x", "HostConfig": {"ConsoleSize": [1, "wide"]}}, None)


async def test_resize_without_a_terminal_is_a_no_op_and_a_bad_size_a_400(started: Daemon) -> None:
    write_container(started, EXITED)
    async with started.client() as client:
        ok = await client.post("/v1.41/containers/web/resize", params={"h": "31", "w": "97"})
        bad = await client.post("/v1.41/containers/web/resize", params={"h": "-1", "w": "97"})
        junk = await client.post("/v1.41/containers/web/resize", params={"h": "tall"})
    assert (ok.status_code, bad.status_code, junk.status_code) == (200, 400, 400)


async def test_logs_since_and_until_bound_the_records_times(started: Daemon) -> None:
    write_container(started, EXITED)
    second = 1767225602  # 2026-01-01T00:00:02Z, the stderr record's second
    async with started.client() as client:
        since = await client.get("/containers/web/logs", params={"stdout": "1", "stderr": "1", "since": str(second)})
        until = await client.get("/containers/web/logs", params={"stdout": "1", "stderr": "1", "until": f"{second}.5"})
        bad = await client.get("/containers/web/logs", params={"stdout": "1", "since": "yesterday"})
    assert frames(since.content) == [(2, b"warn\n"), (1, b"two\n")]
    assert frames(until.content) == [(1, b"one\n"), (2, b"warn\n")]
    assert bad.status_code == 400


async def test_ps_filters_by_exit_code(started: Daemon) -> None:
    write_container(started, EXITED)
    async with started.client() as client:
        seven = await client.get("/containers/json", params={"all": "1", "filters": '{"exited": ["7"]}'})
        zero = await client.get("/containers/json", params={"all": "1", "filters": '{"exited": {"0": true}}'})
    assert [r["Id"] for r in seven.json()] == [CID] and zero.json() == []


async def test_rename_changes_the_name_and_refuses_bad_ones(started: Daemon) -> None:
    write_container(started, EXITED)
    async with started.client() as client:
        renamed = await client.post("/v1.41/containers/web/rename", params={"name": "api"})
        doc = (await client.get(f"/v1.41/containers/{CID}/json")).json()
        bad = await client.post("/v1.41/containers/api/rename", params={"name": "no spaces"})
        empty_name = await client.post("/v1.41/containers/api/rename")
        top = await client.get("/v1.41/containers/api/top")
    assert renamed.status_code == 204 and doc["Name"] == "/api"
    assert (bad.status_code, empty_name.status_code, top.status_code) == (400, 400, 409)
