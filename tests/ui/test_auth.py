"""Signing in to the UI with the API's users and rules: htpasswd users see everything, a token service's users see
what its rules let them pull; an anonymous visitor is sent to the sign-in form; the session is a signed HttpOnly,
SameSite=Strict cookie that holds no password or token; every POST needs the session's CSRF token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from registry.ui.session import COOKIE
from tests.api_helpers import client_on, digest_of
from tests.auth.helpers import ISSUER, SERVICE, basic, bearer, config_with, write_htpasswd
from tests.ui.helpers import FORM, csrf_of
from tests.ui.test_pages import names_on

USERS = {"alice": "alice-pw", "bob": "bob-pw", "nobody": "nobody-pw", "root": "root-pw"}
REPOSITORIES = ["home/bob/x", "public/base", "team/app", "team/db"]
RULES: list[dict[str, Any]] = [
    {"users": ["alice"], "repositories": ["team/*"], "actions": ["pull"]},
    {"users": ["bob"], "repositories": ["home/${user}/*"], "actions": ["*"]},
    {"users": ["root"], "repositories": ["*"], "actions": ["*"], "catalog": True},
]


@asynccontextmanager
async def token_service(tmp_path: Path, database_url: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", USERS)
    server = {"key": str(tmp_path / "token.pem"), "htpasswd": str(htpasswd), "access": RULES}
    server["anonymouspull"] = ["public/*"]
    auth = {"token": {"service": SERVICE, "issuer": ISSUER, "server": server}}
    extra = {"database": {"url": database_url}} if database_url else {}
    async with client_on(config_with(tmp_path, auth, **extra)) as client:
        query = [("service", SERVICE), *[("scope", f"repository:{name}:push,pull") for name in REPOSITORIES]]
        response = await client.get("/auth/token", params=query, headers=basic("root", USERS["root"]))
        headers = bearer(response.json()["token"])
        for name in REPOSITORIES:
            url = f"/v2/{name}/blobs/uploads/"
            pushed = await client.post(
                url, params={"digest": digest_of(name.encode())}, content=name.encode(), headers=headers
            )
            assert pushed.status_code == 201, pushed.text
        yield client


@asynccontextmanager
async def htpasswd_registry(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    path = write_htpasswd(tmp_path / "htpasswd", USERS)
    auth = {"htpasswd": {"realm": "test", "path": str(path)}}
    async with client_on(config_with(tmp_path, auth)) as client:
        for name in REPOSITORIES:
            url = f"/v2/{name}/blobs/uploads/"
            headers = basic("root", USERS["root"])
            pushed = await client.post(
                url, params={"digest": digest_of(name.encode())}, content=name.encode(), headers=headers
            )
            assert pushed.status_code == 201, pushed.text
        yield client


async def sign_in(client: httpx.AsyncClient, user: str, password: str, next_path: str = "/") -> httpx.Response:
    form = await client.get("/login", params={"next": next_path})
    fields = {"username": user, "password": password, "csrf": csrf_of(form), "next": next_path}
    return await client.post("/login", data=fields, headers=FORM)


async def test_an_anonymous_visitor_is_sent_to_the_sign_in_form(tmp_path: Path) -> None:
    async with htpasswd_registry(tmp_path) as client:
        for path in ("/", "/r/team/app", "/gc", "/r/team/app/manifests/sha256:" + "0" * 64):
            response = await client.get(path + "?x=1")
            assert response.status_code == 303
            location = urlsplit(response.headers["location"])
            assert location.path == "/login" and parse_qs(location.query)["next"] == [path + "?x=1"]
        form = await client.get("/login")
        assert '<label for="username">' in form.text and '<label for="password">' in form.text


async def test_htpasswd_users_sign_in_and_see_every_repository(tmp_path: Path) -> None:
    async with htpasswd_registry(tmp_path) as client:
        wrong = await sign_in(client, "alice", "not-her-password")
        assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
        assert (await client.get("/")).status_code == 303
        signed = await sign_in(client, "alice", USERS["alice"], "/r/team/app?sort=name")
        assert signed.status_code == 303 and signed.headers["location"] == "/r/team/app?sort=name"
        assert names_on(await client.get("/")) == REPOSITORIES
        assert "Signed in as <strong>alice</strong>" in (await client.get("/")).text


async def test_the_session_cookie_is_httponly_strict_and_holds_no_secret(tmp_path: Path) -> None:
    async with htpasswd_registry(tmp_path) as client:
        signed = await sign_in(client, "alice", USERS["alice"])
        cookie = signed.headers["set-cookie"]
        assert (
            cookie.startswith(f"{COOKIE}=")
            and "HttpOnly" in cookie
            and "SameSite=strict" in cookie.replace("Strict", "strict")
        )
        assert "Secure" not in cookie  # plain http here
        assert (
            USERS["alice"] not in cookie
            and "location" in signed.headers
            and USERS["alice"] not in signed.headers["location"]
        )
        page = await client.get("/")
        assert USERS["alice"] not in page.text
        assert "Bearer" not in page.text and "eyJ" not in page.text  # no token in the page
        client.cookies.clear()
        over_https = await client.get("https://registry.test/login")
        assert "Secure" in over_https.headers["set-cookie"]


async def test_a_forged_or_tampered_cookie_is_no_session(tmp_path: Path) -> None:
    async with htpasswd_registry(tmp_path) as client:
        await sign_in(client, "alice", USERS["alice"])
        value = client.cookies[COOKIE]
        body, mac = value.split(".")
        client.cookies.set(COOKIE, body + "." + mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB"))
        assert (await client.get("/")).status_code == 303


async def test_a_changed_password_ends_the_session(tmp_path: Path) -> None:
    async with htpasswd_registry(tmp_path) as client:
        await sign_in(client, "alice", USERS["alice"])
        assert (await client.get("/")).status_code == 200
        write_htpasswd(tmp_path / "htpasswd", {**USERS, "alice": "a new one"})
        assert (await client.get("/")).status_code == 303


async def test_sign_in_without_the_csrf_token_is_403(tmp_path: Path) -> None:
    async with htpasswd_registry(tmp_path) as client:
        await client.get("/login")
        fields = {"username": "alice", "password": USERS["alice"], "next": "/"}
        refused = await client.post("/login", data=fields, headers=FORM)
        assert refused.status_code == 403
        assert (await client.get("/")).status_code == 303
        fresh = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
        form = await client.get("/login")
        stolen = await fresh.post("/login", data={**fields, "csrf": csrf_of(form)}, headers=FORM)
        assert stolen.status_code == 403  # a token is worth nothing without its session


async def test_after_sign_in_only_a_path_of_the_ui_is_followed(tmp_path: Path) -> None:
    async with htpasswd_registry(tmp_path) as client:
        for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "/\t/evil.example", "/\n/evil"):
            client.cookies.clear()
            signed = await sign_in(client, "alice", USERS["alice"], target)
            assert signed.headers["location"] == "/"


async def test_signing_out_ends_the_session(tmp_path: Path) -> None:
    async with htpasswd_registry(tmp_path) as client:
        await sign_in(client, "alice", USERS["alice"])
        page = await client.get("/")
        out = await client.post("/logout", data={"csrf": csrf_of(page)}, headers=FORM)
        assert out.status_code == 303
        assert (await client.get("/")).status_code == 303


async def test_token_service_users_see_only_what_they_may_pull(tmp_path: Path, database_url: str) -> None:
    async with token_service(tmp_path, database_url) as client:
        await sign_in(client, "alice", USERS["alice"])
        assert names_on(await client.get("/")) == ["public/base", "team/app", "team/db"]
        assert (await client.get("/r/home/bob/x")).status_code == 404
        assert (await client.get("/gc")).status_code == 404  # the registry's queues: for those who see everything
        client.cookies.clear()
        await sign_in(client, "bob", USERS["bob"])
        assert names_on(await client.get("/")) == ["home/bob/x", "public/base"]
        assert names_on(await client.get("/", params={"q": "team"})) == []
        client.cookies.clear()
        await sign_in(client, "nobody", USERS["nobody"])
        assert names_on(await client.get("/")) == ["public/base"]  # anonymouspull: what anyone may pull
        assert (await client.get("/r/team/app")).status_code == 404
        client.cookies.clear()
        await sign_in(client, "root", USERS["root"])
        assert names_on(await client.get("/")) == REPOSITORIES
        assert (await client.get("/gc")).status_code == 200


async def test_without_a_token_service_nobody_can_sign_in_here(tmp_path: Path) -> None:
    from tests.auth.helpers import REALM, certificate, rsa_key, write_pem

    key = rsa_key()
    bundle = write_pem(tmp_path / "root.pem", certificate(key, "issuer"))
    auth = {"token": {"realm": REALM, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(bundle)}}
    async with client_on(config_with(tmp_path, auth)) as client:
        assert (await client.get("/")).status_code == 303
        form = await client.get("/login")
        assert "another service" in form.text and 'name="password"' not in form.text
