"""The session key: from ``http.secret``, else the token service's key, else one ``registry serve`` shares with its
workers through the environment, else made now; a session signed with one key is nothing to another."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from registry.ui.session import COOKIE, SHARED_KEY_ENV, Sessions, session_key, share_key_with_workers


def _request(cookie: str) -> Request:
    headers = [(b"cookie", f"{COOKIE}={cookie}".encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "query_string": b""})


def test_the_key_comes_from_the_secret_then_the_service_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SHARED_KEY_ENV, raising=False)
    assert session_key("s3cret", b"service") == session_key("s3cret", None)
    assert session_key(None, b"service") == session_key(None, b"service") != session_key("s3cret", None)
    assert session_key(None, None) != session_key(None, None)  # made at start: a new one each time


def test_workers_share_the_key_serve_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SHARED_KEY_ENV, raising=False)
    share_key_with_workers()
    made = session_key(None, None)
    share_key_with_workers()  # a second call keeps it
    assert session_key(None, None) == made
    assert session_key("s3cret", None) != made  # a secret still comes first


def test_a_session_signed_with_another_key_is_none() -> None:
    ours, theirs = Sessions(b"k" * 32, 60, "/"), Sessions(b"x" * 32, 60, "/")
    cookie = ours.dump(ours.new("alice", "stamp"))
    loaded = ours.load(_request(cookie))
    assert loaded is not None and loaded.user == "alice"
    assert theirs.load(_request(cookie)) is None
    assert ours.load(_request("garbage")) is None and ours.load(_request("a.b")) is None


def test_an_expired_session_is_none() -> None:
    sessions = Sessions(b"k" * 32, -1, "/")
    assert sessions.load(_request(sessions.dump(sessions.new("alice")))) is None
