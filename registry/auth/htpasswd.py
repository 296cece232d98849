"""Users in an Apache htpasswd file with bcrypt entries (``$2y$``, ``$2a$``, ``$2b$``), as distribution reads it.

The file is read again whenever it changes (its size, mtime or inode), so ``registry user add`` needs no restart.
A bcrypt check costs about 100 ms of CPU: it runs in a thread, and a success is remembered for a few minutes under
a SHA-256 of (user, password, stored hash), so the many requests of one ``docker push`` pay it once; a changed
password or a removed user stops matching at once. An unknown user costs a bcrypt check too.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

import bcrypt

log = logging.getLogger("registry.auth")
BCRYPT_PREFIXES = ("$2y$", "$2a$", "$2b$")
MAX_PASSWORD_BYTES = 72  # bcrypt's limit; bcrypt >= 5 refuses longer ones
CACHE_SECONDS = 300.0
CACHE_LIMIT = 4096
DEFAULT_COST = 11


class HtpasswdError(Exception):
    pass


def parse(text: str, source: str = "htpasswd") -> dict[str, str]:
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        user, sep, hashed = entry.partition(":")
        if not sep or not user:
            raise HtpasswdError(f"{source}: line {number} is not 'user:hash'")
        users[user] = hashed
    return users


def read(path: str) -> dict[str, str]:
    return parse(Path(path).read_text(encoding="utf-8"), path)


def check_username(name: str) -> str:
    if not name or ":" in name or any(c.isspace() or not c.isprintable() for c in name):
        raise HtpasswdError(f"invalid user name {name!r}: no ':', spaces or control characters")
    return name


def hash_password(password: str, cost: int = DEFAULT_COST) -> str:
    data = password.encode("utf-8")
    if not data or len(data) > MAX_PASSWORD_BYTES:
        raise HtpasswdError(f"a password must be 1 to {MAX_PASSWORD_BYTES} bytes (bcrypt's limit)")
    return bcrypt.hashpw(data, bcrypt.gensalt(cost)).decode("ascii")


def write(path: str, users: dict[str, str]) -> None:
    """Replace the file atomically (mode 0600): readers see the old file or the new one, never half of one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{user}:{hashed}\n" for user, hashed in sorted(users.items()))
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".htpasswd-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _bcrypt_only(users: dict[str, str], source: str) -> dict[str, str]:
    for user, hashed in users.items():
        if not hashed.startswith(BCRYPT_PREFIXES):
            log.warning("%s: user %s has no bcrypt hash and cannot log in", source, user)
    return {user: hashed for user, hashed in users.items() if hashed.startswith(BCRYPT_PREFIXES)}


def _check(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # a malformed hash, or a password over bcrypt's 72 bytes
        return False


class Htpasswd:
    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._users: dict[str, str] = {}
        self._verified: dict[bytes, float] = {}
        self._dummy: bytes | None = None
        self._reload()

    def _reload(self) -> None:
        try:
            info = os.stat(self.path)
            stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
            if stamp != self._stamp:
                self._users, self._stamp = _bcrypt_only(read(self.path), self.path), stamp
        except (OSError, UnicodeDecodeError, HtpasswdError) as exc:
            if self._stamp is None:
                raise HtpasswdError(f"cannot read {self.path}: {exc}") from None
            log.warning("cannot read %s again, keeping the users read before: %s", self.path, exc)

    def users(self) -> dict[str, str]:
        self._reload()
        return dict(self._users)

    def entry(self, user: str) -> str | None:
        self._reload()
        return self._users.get(user)

    async def verify(self, user: str, password: str) -> bool:
        hashed = self.entry(user)
        secret = password.encode("utf-8", "surrogateescape")
        if hashed is None:
            await asyncio.to_thread(lambda: _check(secret, self._dummy_hash()))
            return False
        key = hashlib.sha256(b"\0".join((user.encode("utf-8", "surrogateescape"), secret, hashed.encode()))).digest()
        now = time.monotonic()
        expires = self._verified.get(key)
        if expires is not None and expires > now:
            return True
        if not await asyncio.to_thread(_check, secret, hashed.encode("ascii", "replace")):
            return False
        if len(self._verified) >= CACHE_LIMIT:
            self._verified = {k: v for k, v in self._verified.items() if v > now}
            if len(self._verified) >= CACHE_LIMIT:
                self._verified.clear()
        self._verified[key] = now + CACHE_SECONDS
        return True

    def _dummy_hash(self) -> bytes:
        if self._dummy is None:
            cost = next((h[4:6] for h in self._users.values() if h[4:6].isdigit()), str(DEFAULT_COST))
            self._dummy = bcrypt.hashpw(os.urandom(16), bcrypt.gensalt(int(cost)))
        return self._dummy
