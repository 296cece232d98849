"""The access model: what a request needs (``Access`` items, from its route) and what a caller holds (``Grants``).

Scopes are the Docker token spec's ``type[(class)]:name:action[,action]*``; a name may hold ``:`` (``host:5000/x``),
so the type is before the first colon and the actions after the last. ``*`` among granted actions allows any action.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from starlette.requests import Request

REPOSITORY = "repository"
REGISTRY = "registry"
PULL, PUSH, DELETE, ANY = "pull", "push", "delete", "*"


@dataclass(frozen=True)
class Access:
    type: str
    name: str
    action: str

    def detail(self) -> dict[str, str]:
        """distribution's shape for an UNAUTHORIZED error's detail."""
        return {"Type": self.type, "Name": self.name, "Action": self.action}


@dataclass(frozen=True)
class Need:
    """What a request needs (``required``), and what it may use when granted (``optional``: a mount's source)."""

    required: tuple[Access, ...] = ()
    optional: tuple[Access, ...] = ()


NeedOf = Callable[[Request], Need]


@dataclass(frozen=True)
class Grants:
    """What a caller may do: actions per (type, name), or everything (``unlimited``) for no auth and htpasswd users.
    ``by_token_service``: the token was signed by the built-in token service, whose rules say what else its subject
    may pull (the catalog lists that too, ``registry.auth.catalog``)."""

    subject: str = ""
    actions: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    unlimited: bool = False
    by_token_service: bool = False

    def allows(self, access: Access) -> bool:
        if self.unlimited:
            return True
        held = self.actions.get((access.type, access.name), frozenset())
        return ANY in held or access.action in held

    def names_with(self, action: str) -> frozenset[str] | None:
        """The repositories on which ``action`` is granted; None when every repository is."""
        if self.unlimited:
            return None
        held = self.actions.items()
        return frozenset(name for (kind, name), actions in held if kind == REPOSITORY and _has(actions, action))


def _has(held: frozenset[str], action: str) -> bool:
    return ANY in held or action in held


EVERYTHING = Grants(unlimited=True)


def granted(request: Request) -> Grants:
    """The caller's grants, set by the route guard; everything when the registry has no authentication."""
    found = getattr(request.state, "grants", EVERYTHING)
    assert isinstance(found, Grants)
    return found


def parse_scope(text: str) -> tuple[str, str, tuple[str, ...]] | None:
    """``repository:team/app:pull,push`` -> (type, name, actions); None for text that is no scope.
    A resource class (``repository(plugin)``) is dropped: access is checked on the type, as distribution does."""
    kind, sep, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not kind or not name:
        return None
    kind = kind.split("(", 1)[0]
    listed = tuple(dict.fromkeys(a for a in actions.split(",") if a))
    return (kind, name, listed) if listed else None


def scopes_in(values: Iterable[str]) -> list[tuple[str, str, tuple[str, ...]]]:
    """Every scope in query or form values; one value may hold several, separated by spaces (the POST form)."""
    return [scope for value in values for part in value.split() if (scope := parse_scope(part)) is not None]


def scope_param(accesses: Iterable[Access]) -> str:
    """The challenge's ``scope``: one ``type:name:actions`` per resource, in the order first needed."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for access in accesses:
        actions = grouped.setdefault((access.type, access.name), [])
        if access.action not in actions:
            actions.append(access.action)
    return " ".join(f"{kind}:{name}:{','.join(actions)}" for (kind, name), actions in grouped.items())


def grants_from(
    subject: str, items: Iterable[tuple[str, str, Iterable[str]]], *, by_token_service: bool = False
) -> Grants:
    actions: dict[tuple[str, str], frozenset[str]] = {}
    for kind, name, listed in items:
        actions[(kind, name)] = actions.get((kind, name), frozenset()) | frozenset(listed)
    return Grants(subject, actions, by_token_service=by_token_service)


# --- what each route needs (routes.py names one of these per route) ---


def _repository(*actions: str) -> NeedOf:
    def need(request: Request) -> Need:
        name = request.path_params.get("name", "")
        return Need(tuple(Access(REPOSITORY, name, action) for action in actions))

    return need


def _authenticated(request: Request) -> Need:
    return Need()


def _catalog(request: Request) -> Need:
    return Need((Access(REGISTRY, "catalog", ANY),))


def _upload_start(request: Request) -> Need:
    """A mount from another repository uses pull on ``from`` when granted; without it the upload is a plain session."""
    need = NEEDS_PUSH(request)
    source = request.query_params.get("from")
    if source and "mount" in request.query_params:
        return Need(need.required, (Access(REPOSITORY, source, PULL),))
    return need


NEEDS_LOGIN: NeedOf = _authenticated
NEEDS_CATALOG: NeedOf = _catalog
NEEDS_PULL: NeedOf = _repository(PULL)
NEEDS_PUSH: NeedOf = _repository(PULL, PUSH)
NEEDS_DELETE: NeedOf = _repository(DELETE)
NEEDS_UPLOAD_START: NeedOf = _upload_start
