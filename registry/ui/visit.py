"""One request to the UI: its session (made on the first visit), its viewer, the CSRF check of a form, and how a
handler's refusal becomes a page. A visitor who must sign in is sent to the sign-in form."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from registry.errors import RegistryError
from registry.handlers.base import Services, services
from registry.names import is_valid_name
from registry.ui.render import page
from registry.ui.session import Session, Sessions
from registry.ui.settings import UiSettings
from registry.ui.viewer import Accounts, Viewer

FORM_MAX_BYTES = 16 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


class UiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Ui:
    settings: UiSettings
    sessions: Sessions
    accounts: Accounts


@dataclass
class Visit:
    request: Request
    ui: Ui
    session: Session
    viewer: Viewer | None  # None: nobody signed in, where that is needed
    fresh: bool  # the session is new: its cookie goes with the response

    @property
    def services(self) -> Services:
        return services(self.request)

    @property
    def deletes_enabled(self) -> bool:
        storage = self.services.config.storage
        return storage.delete_enabled and not storage.read_only

    def may_delete(self, name: str) -> bool:
        return self.deletes_enabled and self.viewer is not None and self.viewer.may_delete(name)

    def seen(self) -> Viewer:
        assert self.viewer is not None  # visiting() lets no one past without one, but on public pages
        return self.viewer

    def repo(self) -> str:
        """The path's repository, when it is one the viewer may pull (any other is as missing: nothing leaks)."""
        name: str = self.request.path_params["name"]
        if not is_valid_name(name) or not self.seen().may_pull(name):
            raise UiError(404, "No such repository.")
        return name

    def url(self, route: str, **params: Any) -> str:
        return str(self.request.app.url_path_for(f"ui:{route}", **params))

    def render(self, template: str, context: dict[str, Any], status: int = 200) -> Response:
        shared = {"viewer": self.viewer, "csrf": self.ui.sessions.csrf(self.session), "accounts": self.ui.accounts}
        return self.respond(page(self.request, template, {**shared, **context}, status))

    def redirect(self, location: str) -> Response:
        return self.respond(RedirectResponse(location, status_code=303))

    def respond(self, response: Response) -> Response:
        if self.fresh:
            self.ui.sessions.set_cookie(response, self.request, self.session)
        return response

    async def form(self) -> dict[str, str]:
        """A POSTed form's fields, once its CSRF token is this session's (403 otherwise)."""
        content_type = self.request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != FORM_TYPE:
            raise UiError(415, "Expected a form.")
        body = bytearray()
        async for chunk in self.request.stream():
            body += chunk
            if len(body) > FORM_MAX_BYTES:
                raise UiError(413, "The form is too large.")
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if self.fresh or not self.ui.sessions.csrf_ok(self.session, fields.get("csrf", "")):
            raise UiError(403, "The form has expired or did not come from this site: reload the page and try again.")
        return fields


Handler = Callable[[Visit], Awaitable[Response]]


def _signed_in_user(ui: Ui, session: Session) -> str | None:
    user = session.user
    return user if user is not None and ui.accounts.stamp(user) == session.stamp else None


def visiting(ui: Ui, handler: Handler, *, public: bool = False) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        loaded = ui.sessions.load(request)
        session = loaded or ui.sessions.new()
        viewer = ui.accounts.viewer(_signed_in_user(ui, session))
        visit = Visit(request, ui, session, viewer, fresh=loaded is None)
        if viewer is None and not public:
            return visit.redirect(_login_url(visit))
        try:
            return await handler(visit)
        except UiError as exc:
            return visit.render("error.html", {"message": exc.message}, exc.status)
        except RegistryError as exc:  # from content/: a missing manifest, an immutable tag
            status = exc.status if 400 <= exc.status < 500 else 503
            return visit.render("error.html", {"message": _registry_message(exc)}, status)

    return endpoint


def _registry_message(exc: RegistryError) -> str:
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    reason = detail.get("reason")
    return f"{exc.message}: {reason}" if reason else exc.message


def _login_url(visit: Visit) -> str:
    target = visit.request.url.path + (f"?{visit.request.url.query}" if visit.request.url.query else "")
    return visit.url("login") + "?" + urlencode({"next": target})
