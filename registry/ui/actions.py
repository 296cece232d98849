"""What the UI changes: signing in and out, deleting a tag, deleting a manifest (after a page naming what else goes),
through the same ``registry.content`` services as the API (so events, reviews and the collector see the same), and
the collector's status."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from registry.db import gc_last_run, queries, ui_queries
from registry.gc.collector import summary
from registry.names import is_valid_tag
from registry.ui.pages import path_digest
from registry.ui.visit import UiError, Visit


def _next(visit: Visit, target: str) -> str:
    """Where to go after signing in: a path of the UI only (never another site: ``//host``, ``/\\host``, or one a
    browser makes so by dropping a tab or a newline)."""
    root = visit.url("repositories")
    plain = target.isascii() and target.isprintable() and " " not in target and "\\" not in target
    return target if plain and target.startswith(root) and not target.startswith("//") else root


async def login_form(visit: Visit) -> Response:
    target = _next(visit, visit.request.query_params.get("next", ""))
    if not visit.ui.accounts.required or (visit.viewer is not None and visit.viewer.user is not None):
        return visit.redirect(target)  # nobody needs to sign in, or this user has
    return visit.render("login.html", {"next": target, "failed": False})


async def login(visit: Visit) -> Response:
    fields = await visit.form()
    target, user = _next(visit, fields.get("next", "")), fields.get("username", "")
    accounts = visit.ui.accounts
    if not accounts.required:
        return visit.redirect(target)
    if not accounts.can_sign_in:
        raise UiError(403, "This registry's users sign in with another service; the UI cannot sign them in.")
    if not await accounts.verify(user, fields.get("password", "")):
        return visit.render("login.html", {"next": target, "failed": True, "username": user}, 401)
    visit.session, visit.fresh = visit.ui.sessions.new(user, accounts.stamp(user)), True
    return visit.redirect(target)


async def logout(visit: Visit) -> Response:
    await visit.form()
    visit.session, visit.fresh = visit.ui.sessions.new(), True
    return visit.redirect(visit.url("login"))


def _may_delete(visit: Visit, name: str) -> None:
    if not visit.deletes_enabled:
        raise UiError(405, "Deletes are disabled on this registry (storage.delete.enabled).")
    if not visit.may_delete(name):
        raise UiError(403, "You may not delete in this repository.")


async def delete_tag(visit: Visit) -> Response:
    name, tag = visit.repo(), visit.request.path_params["tag"]
    _may_delete(visit, name)
    await visit.form()
    if not is_valid_tag(tag):
        raise UiError(404, "No such tag.")
    await visit.services.manifests.delete(name, tag)
    return visit.redirect(visit.url("tags", name=name) + "?" + urlencode({"deleted": tag}))


async def confirm_delete_manifest(visit: Visit) -> Response:
    name, digest = visit.repo(), path_digest(visit)
    _may_delete(visit, name)
    stored = await visit.services.manifests.get(name, digest)
    async with visit.services.db.read() as session:
        tagged = await ui_queries.tags_of(session, stored.id)
        children = await ui_queries.children_of(session, stored.id)
        parents = await ui_queries.parents_of(session, stored.id)
        referrers = await queries.referrers(session, name, digest, None)
    context = {"name": name, "manifest": stored, "tags": tagged, "children": list(children.values())}
    context |= {"parents": parents, "referrers": referrers}
    return visit.render("delete_manifest.html", context)


async def delete_manifest(visit: Visit) -> Response:
    name, digest = visit.repo(), path_digest(visit)
    _may_delete(visit, name)
    await visit.form()
    await visit.services.manifests.delete(name, digest)
    return visit.redirect(visit.url("tags", name=name) + "?" + urlencode({"deleted": digest}))


async def gc(visit: Visit) -> Response:
    if not visit.seen().sees_everything:
        raise UiError(404, "The collector's status is shown to those who see every repository.")
    async with visit.services.db.read() as session:
        counts = await ui_queries.queue_counts(session)
        last = await gc_last_run.latest(session)
    config = visit.services.config.storage
    context = {"counts": counts, "gc": config.gc, "read_only": config.read_only, "last": last}
    context["summary"] = last and summary(
        last.manifests, last.blobs, last.bytes_freed, last.links_removed, last.reviews
    )
    return visit.render("gc.html", context)
