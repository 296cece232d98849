"""``registry user add|remove|list`` on the htpasswd file a config names (or ``--file``)."""

from __future__ import annotations

import io
from pathlib import Path

import bcrypt
import pytest

from registry.auth.htpasswd import read
from registry.cli import main


def _config(tmp_path: Path, auth: str) -> str:
    path = tmp_path / "config.yml"
    path.write_text(f"version: 0.1\nstorage:\n  inmemory: {{}}\n{auth}")
    return str(path)


def _add(monkeypatch: pytest.MonkeyPatch, password: str, *args: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    main(["user", "add", *args, "--password-stdin", "--cost", "10"])


def test_add_list_and_remove_with_the_file_from_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    htpasswd = tmp_path / "htpasswd"
    config = _config(tmp_path, f"auth:\n  htpasswd:\n    realm: r\n    path: {htpasswd}\n")
    _add(monkeypatch, "s3cret pw", "alice", config)
    _add(monkeypatch, "other", "bob", config)
    users = read(str(htpasswd))
    assert sorted(users) == ["alice", "bob"]
    assert users["alice"].startswith("$2b$10$") and bcrypt.checkpw(b"s3cret pw", users["alice"].encode())
    assert htpasswd.stat().st_mode & 0o777 == 0o600
    main(["user", "list", config])
    assert capsys.readouterr().out == "alice\nbob\n"
    main(["user", "remove", "alice", config])
    assert sorted(read(str(htpasswd))) == ["bob"]


def test_the_token_service_htpasswd_and_file_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = tmp_path / "users"
    token = "auth:\n  token:\n    service: s\n    issuer: i\n    server:\n      key: k\n"
    config = _config(tmp_path, f"{token}      htpasswd: {server}\n")
    _add(monkeypatch, "pw", "carol", config)
    assert list(read(str(server))) == ["carol"]
    other = tmp_path / "other"
    _add(monkeypatch, "pw", "dave", "--file", str(other))
    assert list(read(str(other))) == ["dave"]


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["user", "remove", "nobody", "--file", "{tmp}/pw"], 1, "no user 'nobody'"),
        (["user", "list", "{tmp}/config.yml"], 2, "names no htpasswd file"),
        (["user", "add", "bad:name", "--password-stdin", "--file", "{tmp}/pw"], 1, "invalid user name"),
        (["user", "add", "x", "--password-stdin", "--cost", "4", "--file", "{tmp}/pw"], 1, "--cost"),
    ],
)
def test_user_errors_are_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    status: int,
    message: str,
) -> None:
    _config(tmp_path, "")
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    with pytest.raises(SystemExit) as exited:
        main([arg.format(tmp=tmp_path) for arg in args])
    assert exited.value.code == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
