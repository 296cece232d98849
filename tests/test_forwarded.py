"""Forwarded headers are believed from the peers of ``http.trustedproxies`` only (loopback by default): from anyone
else a forged ``X-Forwarded-Host`` or ``-Proto`` changes neither a ``Location`` nor the token challenge's realm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from registry.config import ConfigError
from registry.forwarded import ForwardedHeaders, TrustedProxies
from tests.api_helpers import client_on
from tests.auth.helpers import config_with, write_htpasswd
from tests.conftest import BASE_URL, make_config

FORGED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example:8443"}
UNTRUSTED, PROXY = ("203.0.113.9", 4000), ("10.0.0.5", 4000)


async def _location(tmp_path: Path, peer: tuple[str, int], **env: str) -> str:
    async with client_on(make_config(tmp_path, "inmemory", **env), peer) as client:
        response = await client.post("/v2/fw/test/blobs/uploads/", headers=FORGED)
    assert response.status_code == 202, response.text
    location: str = response.headers["location"]
    return location


async def _realm(tmp_path: Path, peer: tuple[str, int], **http: Any) -> str:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "pw"})
    server = {"key": str(tmp_path / "token.pem"), "htpasswd": str(htpasswd)}
    auth = {"token": {"service": "registry.test", "issuer": "test", "server": server}}
    config = config_with(tmp_path, auth, **({"http": http} if http else {}))
    async with client_on(config, peer) as client:
        response = await client.get("/v2/fw/test/tags/list", headers=FORGED)
    assert response.status_code == 401, response.text
    challenge: str = response.headers["www-authenticate"]
    return challenge.split('"')[1]


async def test_a_forged_forwarded_host_from_an_untrusted_peer_changes_no_location(tmp_path: Path) -> None:
    location = await _location(tmp_path, UNTRUSTED)
    assert location.startswith(f"{BASE_URL}/v2/fw/test/blobs/uploads/")


async def test_a_forged_forwarded_host_from_an_untrusted_peer_changes_no_realm(tmp_path: Path) -> None:
    assert await _realm(tmp_path, UNTRUSTED) == f"{BASE_URL}/auth/token"


async def test_a_configured_proxy_sets_the_location_and_the_realm(tmp_path: Path) -> None:
    location = await _location(tmp_path, PROXY, REGISTRY_HTTP_TRUSTEDPROXIES="10.0.0.0/8")
    assert location.startswith("https://evil.example:8443/v2/fw/test/blobs/uploads/")
    realm = await _realm(tmp_path, PROXY, trustedproxies=["192.0.2.1", "10.0.0.0/8"])
    assert realm == "https://evil.example:8443/auth/token"


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
async def test_loopback_is_trusted_by_default(tmp_path: Path, peer: str) -> None:
    location = await _location(tmp_path, (peer, 4000))
    assert location.startswith("https://evil.example:8443/")


async def test_a_configured_list_replaces_the_default(tmp_path: Path) -> None:
    location = await _location(tmp_path, ("127.0.0.1", 4000), REGISTRY_HTTP_TRUSTEDPROXIES="10.0.0.0/8")
    assert location.startswith(f"{BASE_URL}/")
    location = await _location(tmp_path, PROXY, REGISTRY_HTTP_TRUSTEDPROXIES="[]")
    assert location.startswith(f"{BASE_URL}/")


async def test_star_trusts_every_peer(tmp_path: Path) -> None:
    location = await _location(tmp_path, UNTRUSTED, REGISTRY_HTTP_TRUSTEDPROXIES="*")
    assert location.startswith("https://evil.example:8443/")


# --- the middleware alone, over a tiny app that shows what it saw ---


async def _seen(request: Request) -> Response:
    client = request.client.host if request.client else None
    return JSONResponse({"scheme": request.url.scheme, "host": request.headers["host"], "client": client})


async def _through(trusted: list[str], peer: str, headers: dict[str, str]) -> dict[str, Any]:
    app = ForwardedHeaders(Route("/", _seen), TrustedProxies.parse(trusted))
    transport = httpx.ASGITransport(app=app, client=(peer, 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://direct.test") as client:
        body: dict[str, Any] = (await client.get("/", headers=headers)).json()
    return body


async def test_x_forwarded_for_gives_the_nearest_address_that_is_no_trusted_proxy() -> None:
    headers = {"X-Forwarded-For": "198.51.100.7, 203.0.113.1, 10.0.0.9"}
    seen = await _through(["10.0.0.0/8"], "10.0.0.5", headers)
    assert seen == {"scheme": "http", "host": "direct.test", "client": "203.0.113.1"}
    assert (await _through(["*"], "10.0.0.5", headers))["client"] == "198.51.100.7"
    assert (await _through(["10.0.0.0/8"], "192.0.2.1", headers))["client"] == "192.0.2.1"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-Proto": "gopher", "X-Forwarded-Host": "a b"},
        {"X-Forwarded-Proto": "", "X-Forwarded-Host": "evil.example/path"},
        {"X-Forwarded-Host": "user@evil.example"},
    ],
)
async def test_a_trusted_proxy_s_malformed_values_are_ignored(headers: dict[str, str]) -> None:
    seen = await _through(["*"], "10.0.0.5", headers)
    assert (seen["scheme"], seen["host"]) == ("http", "direct.test")


async def test_the_first_of_several_forwarded_values_is_taken() -> None:
    headers = {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "a.example, b.example"}
    seen = await _through(["*"], "10.0.0.5", headers)
    assert (seen["scheme"], seen["host"]) == ("https", "a.example")


# --- the key ---


@pytest.mark.parametrize(
    ("value", "trusted", "untrusted"),
    [
        (None, ["127.0.0.1", "::1"], ["127.0.0.2", "10.0.0.1", None]),
        ("10.0.0.0/8, 192.0.2.1", ["10.1.2.3", "192.0.2.1"], ["127.0.0.1", "192.0.2.2"]),
        ("[fd00::/8]", ["fd00::1"], ["::1"]),
        ("[]", [], ["127.0.0.1"]),
        ("*", ["203.0.113.9", None], []),
    ],
)
def test_http_trustedproxies(
    tmp_path: Path, value: str | None, trusted: list[str | None], untrusted: list[str | None]
) -> None:
    env = {} if value is None else {"REGISTRY_HTTP_TRUSTEDPROXIES": value}
    proxies = make_config(tmp_path, "inmemory", **env).http.trustedproxies
    assert [host for host in trusted + untrusted if proxies.trusts(host)] == trusted


@pytest.mark.parametrize("value", ["localhost", "10.0.0.0/33", "{a: b}", "[1, 2]"])
def test_a_wrong_trustedproxies_entry_names_the_key(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        make_config(tmp_path, "inmemory", REGISTRY_HTTP_TRUSTEDPROXIES=value)
    assert raised.value.key == "http.trustedproxies"
