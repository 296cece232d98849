"""htpasswd users: bcrypt entries only, read again when the file changes, successes remembered safely."""

from __future__ import annotations

import os
from pathlib import Path

import bcrypt
import pytest

from registry.auth import htpasswd
from registry.auth.htpasswd import Htpasswd, HtpasswdError, parse
from tests.auth.helpers import write_htpasswd


def test_parse_skips_blanks_and_comments_and_refuses_lines_without_a_colon() -> None:
    assert parse("# users\n\nalice:$2y$05$abc\n  bob:$2b$05$def  \n") == {"alice": "$2y$05$abc", "bob": "$2b$05$def"}
    with pytest.raises(HtpasswdError, match="line 2"):
        parse("alice:$2y$x\nbroken\n")


async def test_verify_right_wrong_and_unknown(tmp_path: Path) -> None:
    users = Htpasswd(str(write_htpasswd(tmp_path / "pw", {"alice": "secret"})))
    assert await users.verify("alice", "secret")
    assert await users.verify("alice", "secret")  # from the cache
    assert not await users.verify("alice", "Secret")
    assert not await users.verify("mallory", "secret")
    assert not await users.verify("alice", "x" * 100)  # over bcrypt's 72 bytes: no match, no error


async def test_apache_2y_hashes_verify(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$", 1)
    (tmp_path / "pw").write_text(f"alice:{hashed}\n")
    assert await Htpasswd(str(tmp_path / "pw")).verify("alice", "pw")


async def test_entries_that_are_not_bcrypt_cannot_log_in(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\nbob:plain\n")
    users = Htpasswd(str(tmp_path / "pw"))
    assert users.users() == {}
    assert not await users.verify("bob", "plain")


async def test_a_changed_file_is_read_again_and_the_cache_follows_it(tmp_path: Path) -> None:
    path = write_htpasswd(tmp_path / "pw", {"alice": "one"})
    users = Htpasswd(str(path))
    assert await users.verify("alice", "one")
    write_htpasswd(path, {"alice": "two", "bob": "three"})
    assert not await users.verify("alice", "one")
    assert await users.verify("alice", "two") and await users.verify("bob", "three")
    write_htpasswd(path, {"bob": "three"})
    assert not await users.verify("alice", "two")


async def test_a_file_that_disappears_keeps_the_users_read_before(tmp_path: Path) -> None:
    path = write_htpasswd(tmp_path / "pw", {"alice": "one"})
    users = Htpasswd(str(path))
    os.unlink(path)
    assert await users.verify("alice", "one")


def test_a_missing_file_is_an_error_at_start(tmp_path: Path) -> None:
    with pytest.raises(HtpasswdError, match="cannot read"):
        Htpasswd(str(tmp_path / "absent"))


def test_write_is_atomic_and_private(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "pw"
    htpasswd.write(str(path), {"b": "$2b$x", "a": "$2b$y"})
    assert path.read_text() == "a:$2b$y\nb:$2b$x\n"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in path.parent.iterdir()] == ["pw"]


@pytest.mark.parametrize("name", ["", "a:b", "a b", "tab\t", "nl\n"])
def test_user_names_that_cannot_be_stored_are_refused(name: str) -> None:
    with pytest.raises(HtpasswdError):
        htpasswd.check_username(name)


@pytest.mark.parametrize("password", ["", "x" * 73])
def test_passwords_bcrypt_cannot_hold_are_refused(password: str) -> None:
    with pytest.raises(HtpasswdError, match="72 bytes"):
        htpasswd.hash_password(password, 4)
