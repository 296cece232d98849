"""``registry serve [CONFIG]`` and ``registry migrate [CONFIG]``: distribution's command line, our server."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

import uvicorn
from starlette.applications import Starlette

from registry import __version__
from registry.app import create_app
from registry.config import Config, ConfigError, listen_host_port, load_config
from registry.db import migrate
from registry.db.engine import Database
from storage_backends import create_backend

log = logging.getLogger("registry")
CONFIG_ENV = "REGISTRY_CONFIGURATION_PATH"
TLS_KEYS = frozenset({"certificate", "key"})
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
    return parser


def _load(path: str | None) -> Config:
    return load_config(path or os.environ.get(CONFIG_ENV) or None)


def _setup_logging(config: Config) -> None:
    level = LOG_LEVELS.get(config.log_level, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


async def _migrate(config: Config) -> None:
    database = Database(config.database_url)
    try:
        await migrate.upgrade(database, config.database_url)
    finally:
        await database.dispose()


def app_factory() -> Starlette:
    """Entry point for worker processes: they read the same configuration as the parent."""
    return create_app(_load(None))


def _uvicorn_options(config: Config, workers: int) -> dict[str, Any]:
    options: dict[str, Any] = {
        "loop": "uvloop",
        "http": "httptools",
        "access_log": not config.log_accesslog_disabled,
        "log_level": LOG_LEVELS.get(config.log_level, logging.DEBUG),
        "proxy_headers": True,
        "server_header": False,
        "workers": workers if workers > 1 else None,
    }
    if config.http.net == "unix":
        options["uds"] = config.http.addr
    else:
        options["host"], options["port"] = listen_host_port(config.http.addr)
    tls = config.http.tls or {}
    if tls.get("certificate"):
        options["ssl_certfile"], options["ssl_keyfile"] = tls["certificate"], tls.get("key")
    return options


def _refuse_unimplemented_security(config: Config) -> None:
    """Serving openly a file that asks for authentication or client certificates would expose every repository."""
    provider = next(iter(config.auth or {}), "none")
    if provider != "none":
        raise ConfigError(f"auth.{provider}", "authentication is not implemented yet; refusing to serve without it")
    unsupported = sorted(set(config.http.tls or {}) - TLS_KEYS)
    if unsupported:
        raise ConfigError(f"http.tls.{unsupported[0]}", "not implemented yet; refusing to serve without it")


def _check_storage(config: Config) -> None:
    try:
        backend = create_backend(config.storage.driver, config.storage.params)
    except (ImportError, ValueError, TypeError) as exc:
        raise ConfigError(f"storage.{config.storage.driver}", str(exc).splitlines()[0]) from None
    asyncio.run(backend.close())


def serve(config_path: str | None, workers: int | None) -> None:
    config = _load(config_path)
    _refuse_unimplemented_security(config)
    _check_storage(config)
    _setup_logging(config)
    for section in config.ignored_sections:
        log.warning("configuration section %s is not implemented yet: ignored", section)
    asyncio.run(_migrate(config))
    count = workers or config.workers
    options = _uvicorn_options(config, count)
    where = options.get("uds") or f"{options.get('host')}:{options.get('port')}"
    log.info("registry %s on %s, storage %s, %d worker(s)", __version__, where, config.storage.driver, count)
    if count > 1:
        if config_path:
            os.environ[CONFIG_ENV] = os.path.abspath(config_path)
        uvicorn.run("registry.cli:app_factory", factory=True, **options)
    else:
        # uvicorn shuts down gracefully, then re-raises the signal with the previous handler: make that an exit 0
        signal.signal(signal.SIGTERM, _exit_cleanly)
        uvicorn.run(create_app(config), **options)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            serve(args.config, args.workers)
        elif args.command == "migrate":
            config = _load(args.config)
            _setup_logging(config)
            asyncio.run(_migrate(config))
    except ConfigError as exc:
        print(f"registry: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
