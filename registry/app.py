"""The ASGI application: routes, error rendering, the API version header, and services built in the lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NamedTuple

import httpx
from sqlalchemy import exc as sql
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.auth.build import Auth, build_auth
from registry.config import Config
from registry.content.blobs import BlobStore
from registry.content.manifests import ManifestStore
from registry.content.purge import purge_until
from registry.content.tags import TagLists
from registry.content.uploads import UploadStore
from registry.content.validation import IndexValidation
from registry.db.engine import Database, DatabaseUnavailable
from registry.errors import (
    API_VERSION_HEADER,
    RETRY_AFTER_SECONDS,
    RETRY_AFTER_STATUSES,
    ErrorCode,
    RegistryError,
    error_response,
)
from registry.events.accesslog import log_access
from registry.events.debug import worker_directory
from registry.events.delivery import deliver_until
from registry.events.endpoints import Notifications
from registry.events.health import HealthGate, add_checks, configured
from registry.events.metrics import database_observer, observe_gc
from registry.events.request_metrics import TALLY
from registry.events.requests import Observer, RequestObserving
from registry.events.sink import EventSink, source_of
from registry.events.storage_metrics import measured
from registry.forwarded import ForwardedHeaders
from registry.gc.collector import Collector, collect_until
from registry.gc.policies import Policies
from registry.gc.retention import retention_until
from registry.handlers.base import Services
from registry.proxy.cache import PullThrough
from registry.proxy.config import ProxyConfig
from registry.proxy.namespace import ProxyNamespaces
from registry.routes import api_routes
from registry.ui.settings import UiSettings
from storage_backends import StorageBackend, StorageError, create_backend

log = logging.getLogger("registry")
_VERSION_HEADER = [(k.lower().encode(), v.encode()) for k, v in API_VERSION_HEADER.items()]


class ResponseHeaders:
    """Adds ``Docker-Distribution-API-Version`` and ``http.headers`` to every response, errors included, and
    ``Retry-After`` to every 429 and 503 that has none (spec.md "Error Codes"; whatever raised it)."""

    def __init__(self, app: ASGIApp, extra: list[tuple[bytes, bytes]]) -> None:
        self.app = app
        self.headers = _VERSION_HEADER + extra

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + self.headers
                if message["status"] in RETRY_AFTER_STATUSES and all(k.lower() != b"retry-after" for k, _ in headers):
                    headers.append((b"retry-after", RETRY_AFTER_SECONDS.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_header)


async def _registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    return error_response(exc, head=request.method == "HEAD")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = ErrorCode.UNSUPPORTED
    return error_response(code.error({"reason": exc.detail}, status=exc.status_code, headers=dict(exc.headers or {})))


async def _client_disconnect(request: Request, exc: Exception) -> Response:
    return error_response(ErrorCode.BLOB_UPLOAD_INVALID.error({"reason": "client disconnected"}))


async def _storage_error(request: Request, exc: Exception) -> Response:
    log.exception("storage error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(ErrorCode.UNAVAILABLE.error({"reason": "storage unavailable"}))


# the database down, unreachable, out of connections or locked past its busy timeout: the client may try again
_DATABASE_UNAVAILABLE = (
    DatabaseUnavailable,
    sql.OperationalError,
    sql.InterfaceError,
    sql.TimeoutError,
    sqlite3.OperationalError,
)


async def _database_error(request: Request, exc: Exception) -> Response:
    lost = isinstance(exc, sql.DBAPIError) and exc.connection_invalidated  # the server went away mid-statement
    if not (lost or isinstance(exc, _DATABASE_UNAVAILABLE)):
        raise exc  # a bug of ours, not the database's state: a 500
    log.error("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return error_response(ErrorCode.UNAVAILABLE.error({"reason": "database unavailable"}))


def _routes(config: Config, auth: Auth, proxy: ProxyConfig) -> list[BaseRoute]:
    routes = api_routes(read_only=config.storage.read_only, proxy=proxy)
    if auth.token_service is not None:
        from registry.auth.endpoint import token_endpoint

        path = auth.token_service.server.path
        routes.append(Route(path, token_endpoint, methods=["GET", "POST"], name="token"))
    ui = UiSettings.from_config(config)
    if ui.enabled:  # after the API's and the token service's routes, so it never shadows them (registry.ui)
        from registry.ui.routes import ui_routes

        routes += ui_routes(config, auth, ui)
    return [Mount(config.http.prefix, routes=routes)] if config.http.prefix else routes


def settle_heap() -> None:
    """What start-up made (modules imported, the app, its pools, caches and tasks) lives as long as the server:
    frozen, the garbage collector (off until now when started by ``registry/__main__.py``) never walks it again.
    Frozen before the app started instead, what uvicorn, the app and its tasks import and build at their start would
    sit in the oldest generation, walked by each full collection (twice as long with a webhook endpoint: httpx's
    transport imports httpcore, h11 and trio at its first use)."""
    gc.freeze()
    gc.enable()


class Sections(NamedTuple):
    """The sections the app reads from the configuration's raw values (``load_config`` has checked the rest)."""

    policies: Policies  # retention and immutable
    notifications: Notifications
    proxy: ProxyConfig  # proxy and proxies
    validation: IndexValidation  # validation.manifests.indexes


def read_sections(config: Config) -> Sections:
    """Each read once: a mistake in any raises ConfigError. ``registry serve`` reads them before any worker starts,
    so that a mistake stops it with one line; found by a worker building its app, it would be a traceback, and the
    supervisor would start that worker again, and again."""
    return Sections(
        Policies.from_config(config),
        Notifications.from_config(config),
        ProxyConfig.from_config(config),
        IndexValidation.from_config(config),
    )


def create_app(
    config: Config,
    *,
    backend: StorageBackend | None = None,
    database: Database | None = None,
    upstream_transport: httpx.AsyncBaseTransport | None = None,  # tests: the proxy's upstreams in process
    serving: bool = False,  # the process serves this app alone (registry serve): settle_heap once it has started
) -> Starlette:
    auth = build_auth(config)
    policies, notifications, proxy, validation = read_sections(config)  # a mistake in any stops the start
    measuring, health = config.http.debug.metrics, configured(config, worker_directory())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = backend or create_backend(config.storage.driver, config.storage.params)
        db = database or Database(config.database_url)
        if measuring:  # registry.events.metrics
            store, db.observer = measured(store), database_observer()
        gc = config.storage.gc
        events = EventSink(notifications, source_of(config.http), config.http)
        blobs = BlobStore(store, db, gc, events)
        uploads, manifests = UploadStore(store, db, blobs), ManifestStore(db, blobs, gc, policies, events, validation)
        app.state.services = Services(config, db, store, blobs, uploads, manifests, TagLists(db))
        pull_through = PullThrough(proxy, manifests, uploads, upstream_transport) if proxy.enabled else None
        app.state.services.proxy = pull_through
        app.state.collector = collector = Collector(db, store, gc, policies, events=events)
        purging, stop = config.storage.upload_purging, asyncio.Event()
        writable = not config.storage.read_only
        tasks = [purge_until(stop, uploads, purging)] if purging.get("enabled") and writable else []
        tasks += [collect_until(stop, collector)] if gc.enabled and writable else []
        tasks += [retention_until(stop, db, policies, events=events)] if policies.deletes_tags and writable else []
        collector.observers += [observe_gc] if measuring else []
        tasks += [TALLY.flush_until(stop)] if measuring else []
        if health is not None:  # registry.events.health
            add_checks(health, config, store, db)
            tasks.append(health.run_until(stop))
        tasks += [deliver_until(stop, db, events)] if events.enabled else []
        running = [asyncio.create_task(task) for task in tasks]
        if serving:
            await asyncio.sleep(0)  # the tasks take their first step: what they set up lives as long
            settle_heap()
        try:
            yield
        finally:
            stop.set()
            for task in running:
                await task
            if database is None:
                await db.dispose()
            if pull_through is not None:
                await pull_through.close()
            if backend is None:
                await store.close()

    app = Starlette(
        routes=_routes(config, auth, proxy),
        lifespan=lifespan,
        exception_handlers={
            RegistryError: _registry_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_disconnect,
            StorageError: _storage_error,
            DatabaseUnavailable: _database_error,
            sql.DBAPIError: _database_error,  # OperationalError and InterfaceError are DBAPIErrors
            sql.TimeoutError: _database_error,  # no pooled connection free in time
            sqlite3.OperationalError: _database_error,
        },
    )
    app.state.gate, app.state.token_service = auth.gate, auth.token_service
    app.router.redirect_slashes = False  # an unknown path is a 404, never a redirect to a route (distribution)
    app.state.health = health  # registry.events.health: None when no check is enabled
    if health is not None:
        app.add_middleware(HealthGate, health=health)  # while a check fails, every request is a 503
    extra = [(k.lower().encode(), v.encode()) for k, values in config.http.headers.items() for v in values]
    if proxy.enabled:
        app.add_middleware(ProxyNamespaces, proxy=proxy, prefix=config.http.prefix)  # spec.md "Registry Proxying"
    app.add_middleware(ForwardedHeaders, trusted=config.http.trustedproxies)
    app.add_middleware(ResponseHeaders, extra=extra)
    observers: list[Observer] = [] if config.log_accesslog_disabled else [log_access]
    app.state.request_observers = observers  # registry.events.requests.add_observer
    tally = TALLY if measuring else None
    app.add_middleware(RequestObserving, observers=observers, tally=tally)  # outermost: it measures all the rest
    return app
