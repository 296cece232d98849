"""What ``/v2/_catalog`` lists to a caller: the repositories it may pull, as Harbor and Quay list them.

    no authentication, htpasswd users   every repository (each may pull every one)
    a token                             the repositories its ``access`` claim grants pull on; for a token of the
                                        built-in token service, also every repository its rules let the token's
                                        subject pull (what the service would grant if asked: ``rules.pull_globs``)

A token from another issuer lists only what its claim names: the registry cannot know that issuer's rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

from registry.auth import rules
from registry.auth.access import PULL, granted
from registry.names import NameSet

if TYPE_CHECKING:
    from registry.auth.service import TokenService


def pullable(request: Request) -> NameSet | None:
    """The repositories the caller may pull; None when it may pull every one."""
    grants = granted(request)
    names = grants.names_with(PULL)
    if names is None:
        return None
    service: TokenService | None = getattr(request.app.state, "token_service", None)
    if not grants.by_token_service or service is None:
        return NameSet(names)
    return NameSet(names, rules.pull_globs(service.server, grants.subject or None))
