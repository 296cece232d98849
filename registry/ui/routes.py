"""The UI's routes, by name (``ui:<name>``), under ``ui.path``. The app adds them after the API's and the token
service's, so a UI path never shadows one of theirs (nor answers for them: a route, not a mount at the root, so a
wrong method on an API path is still the API's 405); repositories live below ``r/``, where no name meets a page.

    {path}                                      repositories            GET
    {path}login, {path}logout                   login, logout           GET and POST, POST
    {path}gc                                    gc                      GET
    {path}static/...                            static                  the CSS and the script
    {path}r/<name>/manifests/<digest>/delete    manifest_delete         GET (what goes with it), POST
    {path}r/<name>/manifests/<digest>           manifest                GET
    {path}r/<name>/tags/<tag>/delete            tag_delete              POST
    {path}r/<name>                              tags                    GET
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from registry.auth.build import Auth
from registry.config import Config, ConfigError
from registry.ui import actions, pages
from registry.ui.render import HERE
from registry.ui.session import Sessions, session_key
from registry.ui.settings import UiSettings
from registry.ui.viewer import Accounts
from registry.ui.visit import Handler, Ui, visiting

REPO = "/r/{name:path}"
MANIFEST = f"{REPO}/manifests/{{digest}}"


def _service_key(auth: Auth) -> bytes | None:
    if auth.token_service is None:
        return None
    from cryptography.hazmat.primitives import serialization

    return auth.token_service.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ui_routes(config: Config, auth: Auth, settings: UiSettings) -> list[BaseRoute]:
    key = session_key(config.http.secret, _service_key(auth))
    cookie_path = (config.http.prefix + settings.path) or "/"
    ui = Ui(settings, Sessions(key, settings.session_lifetime, cookie_path), Accounts(auth))

    root = settings.path.rstrip("/")

    def route(path: str, handler: Handler, name: str, method: str = "GET", public: bool = False) -> Route:
        return Route(root + path, visiting(ui, handler, public=public), methods=[method], name=f"ui:{name}")

    routes: list[BaseRoute] = [
        route("/", pages.repositories, "repositories"),
        route("/login", actions.login_form, "login", public=True),
        route("/login", actions.login, "login_post", "POST", public=True),
        route("/logout", actions.logout, "logout", "POST", public=True),
        route("/gc", actions.gc, "gc"),
        Mount(f"{root}/static", StaticFiles(directory=HERE / "static"), name="ui:static"),
        route(f"{MANIFEST}/delete", actions.confirm_delete_manifest, "manifest_delete"),
        route(f"{MANIFEST}/delete", actions.delete_manifest, "manifest_delete_post", "POST"),
        route(MANIFEST, pages.manifest, "manifest"),
        route(f"{REPO}/tags/{{tag}}/delete", actions.delete_tag, "tag_delete", "POST"),
        route(REPO, pages.tags, "tags"),
    ]
    _check_token_path(auth, config.http.prefix, routes)
    return routes


def _check_token_path(auth: Auth, prefix: str, routes: list[BaseRoute]) -> None:
    """The token service's path is served first: a UI page at the same path could never be reached."""
    if auth.token_service is None:
        return
    path = auth.token_service.server.path
    taken = [route for route in routes if isinstance(route, Route) and route.path == path]
    if taken:
        raise ConfigError("ui.path", f"{prefix}{path} is the token service's (auth.token.server.path): move one")
