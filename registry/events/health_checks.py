"""distribution's ``health.file``, ``health.http`` and ``health.tcp`` checks, each named in ``/debug/health`` as
distribution names it (the file's path as given, the uri, the addr), run like the others (``registry.events.health``):

- a file check fails while its file exists ("file exists"): the operator's way to take a replica out of a load
  balancer, and to put it back by removing the file;
- an http check sends a HEAD, as distribution does (redirects followed), and fails on another status than
  ``statuscode`` or on no answer within ``timeout``;
- a tcp check fails when a connection to ``addr`` is not made within ``timeout``.

Without a ``timeout`` a probe is bounded by its check's ``interval``, as every check is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import Awaitable, Callable

import httpx

from registry.config import CheckConfig, HealthConfig, HttpCheckConfig, TcpCheckConfig, listen_host_port

Check = Callable[[], Awaitable[None]]  # raises when unhealthy


class Unhealthy(Exception):
    """What a check found wrong, said as the check's value in ``/debug/health``."""


def file_check(path: str) -> Check:
    async def check() -> None:
        try:
            await asyncio.to_thread(os.stat, path)
        except FileNotFoundError:
            return
        raise Unhealthy("file exists")

    return check


def http_check(settings: HttpCheckConfig) -> Check:
    headers = [(name, value) for name, values in settings.headers.items() for value in values]
    verify = ssl.create_default_context()  # once: a client per probe (a new connection each time, as distribution)

    async def check() -> None:
        try:
            async with httpx.AsyncClient(verify=verify, follow_redirects=True, timeout=settings.timeout) as client:
                response = await asyncio.wait_for(client.head(settings.uri, headers=headers), settings.timeout)
        except (httpx.HTTPError, OSError, TimeoutError) as exc:
            raise Unhealthy(f"error while checking {settings.uri}: {_reason(exc)}") from None
        if response.status_code != settings.statuscode:
            raise Unhealthy(f"downstream service returned unexpected status: {response.status_code}")

    return check


def tcp_check(settings: TcpCheckConfig) -> Check:
    host, port = listen_host_port(settings.addr)

    async def check() -> None:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), settings.timeout)
        except (OSError, TimeoutError) as exc:
            raise Unhealthy(f"connection to {settings.addr} failed: {_reason(exc)}") from None
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    return check


def _reason(exc: Exception) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timed out"
    return " ".join(str(exc).split()) or type(exc).__name__


def listed_checks(settings: HealthConfig) -> list[tuple[str, Check, CheckConfig]]:
    """The file, http and tcp checks, by name."""
    return [
        *((file.file, file_check(file.file), file) for file in settings.file),
        *((http.uri, http_check(http), http) for http in settings.http),
        *((tcp.addr, tcp_check(tcp), tcp) for tcp in settings.tcp),
    ]
