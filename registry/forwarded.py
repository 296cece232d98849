"""Where a request came from: its scheme, host and client, through the proxies the configuration trusts.

From a peer in ``http.trustedproxies`` (uvicorn's ``forwarded_allow_ips`` convention: addresses, networks, ``*``)
``X-Forwarded-Proto``, ``X-Forwarded-Host`` and ``X-Forwarded-For`` replace the request's scheme, Host and client;
from any other peer they are ignored, and the Host the request came with stands. This middleware is the one place
forwarded headers are read: ``registry serve`` turns uvicorn's own proxy handling off.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

EVERYONE = "*"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True)
class TrustedProxies:
    """The peers whose forwarded headers are believed: ``everyone``, or those in ``networks``. A peer on a unix
    socket has no address, so only ``everyone`` trusts it (as uvicorn)."""

    networks: tuple[Network, ...] = ()
    everyone: bool = False
    _cache: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedProxies:
        """``*``, addresses and networks (``10.0.0.0/8``); ValueError names the first entry that is none of them."""
        listed = [entry.strip() for entry in entries if entry.strip()]
        if EVERYONE in listed:
            return cls(everyone=True)
        return cls(tuple(dict.fromkeys(_network(entry) for entry in listed)))

    def trusts(self, host: str | None) -> bool:
        if self.everyone:
            return True
        if not host:
            return False
        found = self._cache.get(host)
        if found is None:
            found = _in_networks(host, self.networks)
            if len(self._cache) < 4096:  # peers are few; a flood of new ones is not kept
                self._cache[host] = found
        return found


def _network(entry: str) -> Network:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(f"expected an IP address, a network like 10.0.0.0/8, or *, got {entry!r}") from None


def _in_networks(host: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack listener's view of an IPv4 peer
    return any(address in network for network in networks)


class ForwardedHeaders:
    """From a trusted peer: the scheme of ``X-Forwarded-Proto``, the Host of ``X-Forwarded-Host`` (first values,
    as distribution reads them) and the client of ``X-Forwarded-For`` (the nearest address that is no trusted proxy,
    as uvicorn finds it). Other peers' forwarded headers change nothing."""

    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            if self.trusted.trusts(client[0] if client else None):
                _forward(scope, self.trusted)
        await self.app(scope, receive, send)


def _forward(scope: Scope, trusted: TrustedProxies) -> None:
    proto = host = None
    chain: list[str] = []
    for name, value in scope["headers"]:
        if name == b"x-forwarded-proto" and proto is None:
            proto = _first(value).lower()
        elif name == b"x-forwarded-host" and host is None:
            host = _first(value)
        elif name == b"x-forwarded-for":
            chain.extend(part.strip() for part in value.decode("latin-1").split(","))
    if proto in _SCHEMES:
        scope["scheme"] = proto
    if host and _is_host(host):
        kept = [(name, value) for name, value in scope["headers"] if name != b"host"]
        scope["headers"] = [(b"host", host.encode("latin-1")), *kept]
    client = _client(chain, trusted)
    if client:
        scope["client"] = (client, 0)


def _first(value: bytes) -> str:
    return value.decode("latin-1").split(",", 1)[0].strip()


def _is_host(text: str) -> bool:
    """A host[:port] fit for a URL: nothing that would end the authority or a header."""
    return all(c.isprintable() and not c.isspace() and c not in "/?#@\\" for c in text)


def _client(chain: list[str], trusted: TrustedProxies) -> str:
    """Each proxy appends the address it was reached from: the last one no trusted proxy holds is the client."""
    hosts = [_bare(entry) for entry in chain if entry]
    if not hosts:
        return ""
    if trusted.everyone:
        return hosts[0]
    return next((host for host in reversed(hosts) if not trusted.trusts(host)), hosts[0])


def _bare(entry: str) -> str:
    """``[::1]:80`` -> ``::1``, ``10.0.0.1:80`` -> ``10.0.0.1``; anything else as it is."""
    if entry.startswith("["):
        return entry[1:].split("]", 1)[0]
    return entry.split(":", 1)[0] if entry.count(":") == 1 else entry


def base_url(request: Request, host: str | None) -> str:
    """The base of absolute URLs: ``http.host`` when configured, else the scheme and Host the client used (a
    trusted proxy's, through ``ForwardedHeaders``)."""
    if host:
        return host.rstrip("/")
    url = request.url
    return f"{url.scheme}://{url.netloc}"
