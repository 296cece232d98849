"""The `runtime` command in-process: errors a user can act on, and json-file logs read back (tail, follow)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from runtime import cli, logs, ociruntime
from runtime.logs import LogWriter


def run_cli(tmp_path: Path, *args: str) -> int:
    return cli.main(["--root", str(tmp_path / "store"), *args])


@pytest.fixture(autouse=True)
def private_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNTIME_CONFIG", str(tmp_path / "config.json"))


def test_unknown_image_and_container(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(tmp_path, "rmi", "nothing:here") == 1
    assert "no such image: docker.io/library/nothing:here" in capsys.readouterr().err
    assert run_cli(tmp_path, "logs", "ghost") == 1
    assert "no such container: ghost" in capsys.readouterr().err
    assert run_cli(tmp_path, "pull", "Bad/Name") == 2
    assert "invalid reference" in capsys.readouterr().err


def test_not_root_says_what_rootless_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ociruntime.os, "geteuid", lambda: 1000)
    assert run_cli(tmp_path, "run", "busybox") == 1
    err = capsys.readouterr().err
    assert "needs root" in err and "rootless mode" in err and "not implemented" in err


def test_no_oci_runtime_names_the_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ociruntime.shutil, "which", lambda name: None)
    assert run_cli(tmp_path, "stop", "x") == 1
    assert "apt-get install runc" in capsys.readouterr().err


def test_unreachable_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(tmp_path, "pull", "-q", "127.0.0.1:9/x:1") == 1
    assert "cannot reach the registry" in capsys.readouterr().err


def test_logs_tail_and_follow(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    writer = LogWriter(path)
    for i in range(5):
        writer.write("stdout" if i % 2 == 0 else "stderr", f"line {i}\n".encode())
    assert [r["log"] for r in logs.read(path, tail=2, running=lambda: False)] == ["line 3\n", "line 4\n"]
    first = json.loads(path.read_text().splitlines()[0])
    assert first["stream"] == "stdout" and first["time"].endswith("Z") and len(first["time"]) == 30

    stop = threading.Event()
    followed: list[str] = []

    def follow() -> None:
        for record in logs.read(path, tail=1, follow=True, running=lambda: not stop.is_set()):
            followed.append(record["log"])

    reader = threading.Thread(target=follow)
    reader.start()
    deadline = time.monotonic() + 10
    while not followed and time.monotonic() < deadline:  # the reader has read the existing lines
        time.sleep(0.01)
    writer.write("stdout", b"late\n")
    writer.close()
    stop.set()
    reader.join(10)
    assert followed == ["line 4\n", "late\n"]
