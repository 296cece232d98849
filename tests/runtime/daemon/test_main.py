"""The socket: 0660 for root and root's group (or --group), a stale socket replaced, anything else refused."""

from __future__ import annotations

import grp
import os
import socket
import stat
from pathlib import Path

import pytest

from runtime.daemon.main import group_id, identity, prepare_socket, remove_socket, secure_socket
from runtime.errors import ConflictError, UsageError


def bound(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    return sock


def test_the_socket_is_0660_for_roots_group_or_the_one_named(short_dir: Path) -> None:
    path = short_dir / "d.sock"
    with bound(path):
        secure_socket(path, None)
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o660
        if os.geteuid() == 0:
            assert (info.st_uid, info.st_gid) == (0, 0)
            group = grp.getgrgid(os.getgid() if os.getgid() != 0 else 1).gr_name
            secure_socket(path, group_id(group))
            assert path.stat().st_gid == grp.getgrnam(group).gr_gid
    with pytest.raises(UsageError):
        group_id("no-such-group-here")


def test_a_stale_socket_is_replaced_a_live_one_and_a_regular_file_refused(short_dir: Path) -> None:
    path = short_dir / "d.sock"
    with bound(path) as live:
        live.listen(1)
        with pytest.raises(ConflictError):
            prepare_socket(path)  # another daemon's: never stolen
    prepare_socket(path)
    assert not path.exists()
    path.write_text("not a socket")
    with pytest.raises(FileExistsError):
        prepare_socket(path)
    assert path.read_text() == "not a socket"


def test_the_daemon_command_takes_its_socket_group_and_root_either_side() -> None:
    from runtime.cli import build_parser

    after = build_parser().parse_args(["daemon", "--socket", "/s.sock", "--root", "/store", "--group", "docker"])
    before = build_parser().parse_args(["--root", "/store", "daemon"])
    default = build_parser().parse_args(["daemon"])
    assert (after.socket, after.root, after.group) == (Path("/s.sock"), Path("/store"), "docker")
    assert (before.root, before.socket) == (Path("/store"), Path("/run/runtime.sock"))
    assert (default.root, default.group) == (None, None)


def test_a_stopping_daemon_removes_its_own_socket_only(short_dir: Path) -> None:
    path = short_dir / "d.sock"
    with bound(path):
        first = identity(path)
    path.unlink()
    with bound(path):  # a later daemon's socket at the same path
        remove_socket(path, first)
        assert path.exists()
        remove_socket(path, identity(path))
        assert not path.exists()
