"""``registry serve [CONFIG]``, ``registry migrate [CONFIG]``, ``registry user add|remove|list``, ``registry gc``,
``registry garbage-collect``, ``registry import`` and ``registry check``: distribution's command line, our server."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import logging
import logging.config
import os
import signal
import sqlite3
import ssl
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from registry import __version__
from registry.app import create_app, read_sections, settle_heap
from registry.auth import users
from registry.auth.build import build_auth
from registry.auth.htpasswd import HtpasswdError
from registry.config import Config, ConfigError, listen_host_port, load_config
from registry.config_schema import CONFIG_ENV, TLS
from registry.content import binding, check_command, import_command
from registry.db import migrate
from registry.db.engine import Database, sqlite_path
from registry.events import logformat
from registry.events.debug import DebugServer
from registry.gc import command as gc_command
from registry.protocol import RegistryHttpProtocol
from registry.ui.session import share_key_with_workers
from storage_backends import create_backend

log = logging.getLogger("registry")
LOG_LEVELS = {"error": logging.ERROR, "warn": logging.WARNING, "warning": logging.WARNING, "info": logging.INFO}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="registry", description="An OCI / Docker container registry")
    parser.add_argument("-v", "--version", action="version", version=f"registry {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the registry (distribution's config.yml, or embedded defaults)")
    serve.add_argument("config", nargs="?", help="path to config.yml (default: $REGISTRY_CONFIGURATION_PATH)")
    serve.add_argument("--workers", type=int, help="worker processes (overrides http.workers)")
    migrate_cmd = commands.add_parser("migrate", help="apply the database migrations and exit")
    migrate_cmd.add_argument("config", nargs="?")
    users.add_parser(commands)
    gc_command.add_parsers(commands)
    import_command.add_parsers(commands)
    check_command.add_parsers(commands)
    return parser


def _load(path: str | None) -> Config:
    return load_config(path or os.environ.get(CONFIG_ENV) or None)


def _log_config(config: Config) -> dict[str, Any]:
    level = LOG_LEVELS.get(config.log_level, logging.DEBUG)
    return logformat.log_config(config.log_formatter, config.log_fields, level)


def _setup_logging(config: Config) -> None:
    logging.config.dictConfig(_log_config(config))


async def _migrate(config: Config) -> None:
    database = Database(config.database_url)
    try:
        await migrate.upgrade(database)
    finally:
        await database.dispose()


def _at_head(config: Config) -> bool:
    """Whether the database is at head; a new SQLite database is brought there at once (``migrate.sqlite_at_head``)."""
    path = sqlite_path(config.database_url)
    if path is not None:
        try:
            return migrate.sqlite_at_head(path)
        except sqlite3.DatabaseError as exc:
            raise SystemExit(f"registry: migrating the database failed: {path}: {exc}") from None
    return asyncio.run(_postgresql_at_head(config))


async def _postgresql_at_head(config: Config) -> bool:
    database = Database(config.database_url)
    try:
        return await migrate.at_head(database)
    finally:
        await database.dispose()


def _migrate_in_child(config: Config) -> None:
    """Migrating loads Alembic, Mako, Pygments and four SQL dialects (about 12 MiB) that a server would then keep
    for life: a database behind head is migrated by a forked child, so the server never imports them. A new SQLite
    database needs neither: it takes the head schema directly."""
    if _at_head(config):
        return
    sys.stderr.flush()
    pid = os.fork()  # no thread runs yet: the check's reader thread is gone with its database
    if pid == 0:
        code = 0
        try:
            asyncio.run(_migrate(config))
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        os._exit(code)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code != 0:
        raise SystemExit(f"registry: migrating the database failed (status {code})")


def app_factory() -> Starlette:
    """Entry point for worker processes: they read the same configuration as the parent."""
    return create_app(_load(None), serving=True)


KEEP_ALIVE_SECONDS = 120


def _uvicorn_options(config: Config, workers: int) -> dict[str, Any]:
    options: dict[str, Any] = {
        "loop": "uvloop",
        "http": RegistryHttpProtocol,
        "access_log": False,  # the access log is ours (registry.events.accesslog), one line per request
        "log_config": _log_config(config),  # applied by uvicorn in each worker too
        "log_level": LOG_LEVELS.get(config.log_level, logging.DEBUG),
        "proxy_headers": False,  # forwarded headers are read by registry.forwarded, from http.trustedproxies only
        "server_header": False,
        "ws": "none",  # no websocket routes: the websockets library is never imported
        "workers": workers if workers > 1 else None,
        # an idle keep-alive connection outlives the client's (Go's HTTP client, docker's, forgets one after 90 s):
        # a server that closes first races the client's next request, and a POST lost that way is not retried
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    }
    if config.http.net == "unix":
        options["uds"] = config.http.addr
    else:
        options["host"], options["port"] = listen_host_port(config.http.addr)
    options.update(_tls_options(config.http.tls or {}))
    return options


def _tls_options(given: dict[str, Any]) -> dict[str, Any]:
    """distribution's ``http.tls`` (declared in ``registry.config_schema.TLS``, which refuses the keys we do not
    implement): a certificate and key; ``clientcas`` makes a client certificate mandatory. Any minimumtls is met."""
    tls = TLS.read(given, "http.tls")
    if not tls["certificate"]:
        if tls["clientcas"] or tls["key"]:
            raise ConfigError("http.tls.certificate", "expected a certificate file with http.tls.key and clientcas")
        return {}
    options: dict[str, Any] = {
        "ssl_certfile": _readable(tls["certificate"], "certificate"),
        "ssl_keyfile": _readable(tls["key"], "key"),
    }
    if tls["clientcas"]:
        options["ssl_ca_certs"] = _client_ca_bundle([_readable(path, "clientcas") for path in tls["clientcas"]])
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options


def _readable(path: object, key: str) -> str:
    if not isinstance(path, str) or not path or not os.access(path, os.R_OK):
        raise ConfigError(f"http.tls.{key}", f"expected a readable file, got {path!r}")
    return path


def _client_ca_bundle(paths: list[str]) -> str:
    """uvicorn takes one CA file: several ``clientcas`` are joined into one that lives as long as the server."""
    if len(paths) == 1:
        return paths[0]
    fd, bundle = tempfile.mkstemp(prefix="registry-clientcas-", suffix=".pem")
    atexit.register(os.unlink, bundle)
    with os.fdopen(fd, "wb") as out:
        for path in paths:
            out.write(Path(path).read_bytes().rstrip(b"\n") + b"\n")
    return bundle


def _check_storage(config: Config) -> None:
    try:
        backend = create_backend(config.storage.driver, config.storage.params)
    except (ImportError, ValueError, TypeError) as exc:
        raise ConfigError(f"storage.{config.storage.driver}", str(exc).splitlines()[0]) from None
    asyncio.run(backend.close())


def serve(config_path: str | None, workers: int | None) -> None:
    config = _load(config_path)
    build_auth(config)  # every auth file is read (and the token key made) once, before any worker starts
    read_sections(config)  # a mistake in retention, notifications, proxy or validation stops here, not in each worker
    _check_storage(config)
    _setup_logging(config)
    for section in config.ignored_sections:
        log.warning("configuration section %s is not implemented yet: ignored", section)
    if config.ignored_env:
        log.warning("environment variables that name no configuration key: ignored: %s", ", ".join(config.ignored_env))
    _migrate_in_child(config)
    asyncio.run(binding.check_config(config, config_path, serving=True))  # refused: one line, exit status 1
    count = workers or config.workers
    if count > 1:
        share_key_with_workers()  # registry.ui: each worker accepts the sessions the others sign
    options = _uvicorn_options(config, count)
    where = options.get("uds") or f"{options.get('host')}:{options.get('port')}"
    log.info("registry %s on %s, storage %s, %d worker(s)", __version__, where, config.storage.driver, count)
    debug = DebugServer(config, count) if config.http.debug.addr else None  # before the workers: they inherit its env
    if debug is not None:
        debug.start()
    try:
        _run(config, config_path, count, options)
    finally:
        if debug is not None:
            debug.stop()


def _run(config: Config, config_path: str | None, count: int, options: dict[str, Any]) -> None:
    if count > 1:
        if config_path:
            os.environ[CONFIG_ENV] = os.path.abspath(config_path)
        settle_heap()  # the supervisor's: each worker settles its own once its app has started
        uvicorn.run("registry.cli:app_factory", factory=True, **options)
    else:
        # uvicorn shuts down gracefully, then re-raises the signal with the previous handler: make that an exit 0
        signal.signal(signal.SIGTERM, _exit_cleanly)
        uvicorn.run(create_app(config, serving=True), **options)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command != "serve":
        gc.enable()
    try:
        if args.command == "serve":
            serve(args.config, args.workers)
        elif args.command == "migrate":
            config = _load(args.config)
            _setup_logging(config)
            asyncio.run(_migrate(config))
        elif args.command == "user":
            users.run(args, args.file or users.htpasswd_path(_load(args.config)))
        elif args.command in ("gc", "garbage-collect"):
            config = _load(args.config)
            _setup_logging(config)
            asyncio.run(_migrate(config))
            asyncio.run(binding.check_config(config, args.config, serving=False))
            asyncio.run(gc_command.run(args, config))
        elif args.command == "import":
            config = _load(args.config)
            _setup_logging(config)
            asyncio.run(import_command.run(args, config))
        elif args.command == "check":
            config = _load(args.config)
            _setup_logging(config)
            if check_command.remaining(asyncio.run(check_command.run(args, config)), args.repair):
                sys.exit(1)
    except ConfigError as exc:
        print(f"registry: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (HtpasswdError, OSError, binding.BindingError) as exc:
        print(f"registry: {exc}", file=sys.stderr)
        sys.exit(1)
