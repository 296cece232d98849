"""The UI's session: a cookie holding who signed in (never a password or a token), signed with an HMAC key, and the
CSRF token each of its forms carries (an HMAC of the session's random id, so a page from another site cannot know it).

    cookie = base64url(json {sid, user, stamp, exp}) "." base64url(HMAC-SHA256(key, that))

``stamp`` is a digest of the user's htpasswd entry: a changed password or a removed user ends the session. The key
comes from ``http.secret`` when set (every worker and replica then agrees), else from the token service's private
key, else it is made at start and shared by the workers of one ``registry serve`` (a restart then signs everyone
out, and replicas need ``http.secret`` to accept each other's sessions).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "registry_ui"
SHARED_KEY_ENV = "PYREGISTRY_UI_KEY"  # not REGISTRY_*: that prefix is the configuration's
_CONTEXT = b"registry-ui-session\0"


@dataclass(frozen=True)
class Session:
    sid: str
    user: str | None = None
    stamp: str | None = None
    expires: int = 0


def session_key(secret: str | None, service_key: bytes | None) -> bytes:
    for source in (secret.encode() if secret else None, service_key, os.environ.get(SHARED_KEY_ENV, "").encode()):
        if source:
            return hashlib.sha256(_CONTEXT + source).digest()
    return os.urandom(32)


def share_key_with_workers() -> None:
    """``registry serve`` with several workers: one random key they all inherit (``http.secret`` or the token
    service's key, when there is one, is used first: it is the same on every replica too)."""
    os.environ.setdefault(SHARED_KEY_ENV, secrets.token_hex(32))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    def __init__(self, key: bytes, lifetime: float, path: str) -> None:
        self.key = key
        self.lifetime = lifetime
        self.path = path  # the cookie's path: the UI's root

    def new(self, user: str | None = None, stamp: str | None = None) -> Session:
        return Session(secrets.token_urlsafe(18), user, stamp, int(time.time() + self.lifetime))

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self.key, data, hashlib.sha256).digest()

    def dump(self, session: Session) -> str:
        body = {"sid": session.sid, "user": session.user, "stamp": session.stamp, "exp": session.expires}
        data = json.dumps(body, separators=(",", ":")).encode()
        return f"{_b64(data)}.{_b64(self._mac(data))}"

    def load(self, request: Request) -> Session | None:
        """The request's session when its cookie is ours, intact and not expired."""
        text = request.cookies.get(COOKIE, "")
        encoded, _, mac = text.partition(".")
        try:
            data, given = _unb64(encoded), _unb64(mac)
            if not hmac.compare_digest(given, self._mac(data)):
                return None
            body = json.loads(data)
            session = Session(str(body["sid"]), body["user"], body["stamp"], int(body["exp"]))
        except (binascii.Error, ValueError, KeyError, TypeError):
            return None
        return session if session.expires > time.time() else None

    def csrf(self, session: Session) -> str:
        return _b64(self._mac(b"csrf\0" + session.sid.encode()))

    def csrf_ok(self, session: Session, given: str) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.csrf(session).encode())

    def set_cookie(self, response: Response, request: Request, session: Session) -> None:
        secure = request.url.scheme == "https"
        max_age = max(0, session.expires - int(time.time()))
        response.set_cookie(
            COOKIE, self.dump(session), max_age=max_age, path=self.path, secure=secure, httponly=True, samesite="strict"
        )
