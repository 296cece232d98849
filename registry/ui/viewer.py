"""Who looks at the UI and what they may see and do: the same users and rules as the API (``registry.auth``).

no authentication     everyone sees and may delete everything (deletes still need storage.delete.enabled)
htpasswd              a user who signs in sees and may delete everything, as with the API
token service         a user signs in with the service's htpasswd; its rules say what they may pull (the
                      catalog's filter, ``rules.pull_globs``) and delete (``rules.allowed``)
token, no service     nobody can sign in here: the users are another issuer's
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from registry.auth import rules
from registry.auth.access import ANY, DELETE, REPOSITORY
from registry.auth.build import Auth
from registry.auth.gate import BasicGate
from registry.auth.htpasswd import Htpasswd
from registry.auth.settings import ServerSettings
from registry.names import NameSet


@dataclass(frozen=True)
class Viewer:
    user: str | None
    visible: NameSet | None  # None: every repository
    server: ServerSettings | None = None  # the token service's rules, when they decide

    @property
    def sees_everything(self) -> bool:
        return self.visible is None

    def may_pull(self, name: str) -> bool:
        return self.visible is None or name in self.visible

    def may_delete(self, name: str) -> bool:
        if self.server is None:
            return True
        actions = rules.allowed(self.server, self.user, REPOSITORY, name)
        return DELETE in actions or ANY in actions


EVERYONE = Viewer(None, None)


class Accounts:
    """Signing in, and the viewer a signed-in user is."""

    def __init__(self, auth: Auth) -> None:
        service = auth.token_service
        self.required = auth.gate is not None
        self.server = service.server if service is not None else None
        self.users: Htpasswd | None = service.users if service is not None else None
        if isinstance(auth.gate, BasicGate):
            self.users = auth.gate.users

    @property
    def can_sign_in(self) -> bool:
        return self.users is not None

    async def verify(self, user: str, password: str) -> bool:
        return self.users is not None and bool(user) and await self.users.verify(user, password)

    def stamp(self, user: str) -> str | None:
        """A digest of the user's entry now: None when the user is gone."""
        entry = self.users.entry(user) if self.users is not None else None
        return None if entry is None else hashlib.sha256(entry.encode()).hexdigest()[:32]

    def viewer(self, user: str | None) -> Viewer | None:
        """What ``user`` sees; None when a sign-in is needed."""
        if not self.required:
            return EVERYONE
        if user is None:
            return None
        if self.server is None:
            return Viewer(user, None)
        globs = rules.pull_globs(self.server, user)
        every = any(set(glob) == {"*"} for glob in globs)  # ``*`` matches every name, ``/`` too
        return Viewer(user, None if every else NameSet(frozenset(), globs), self.server)
