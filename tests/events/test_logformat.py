"""Log lines in every ``log.formatter`` (``registry.events.logformat``), parsed back; the access log's line per
request (``registry.events.accesslog``); and no password or token in any line, whatever the format."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import logging.config
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from registry.cli import _uvicorn_options
from registry.config import ConfigError, load_config
from registry.events.accesslog import ACCESS_LOGGER
from registry.events.logformat import FORMATS, Formatter, StderrHandler, log_config, redact
from registry.events.requests import RequestObserving
from tests.api_helpers import app_of, client_on, digest_of, image_manifest, push_blob, put_manifest
from tests.auth.helpers import basic, config_with, write_htpasswd
from tests.conftest import make_config

LOGFMT_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)')
TEXT_HEAD = re.compile(r"(\S+) (\w+) ([\w.]+): ")


def parse_logfmt(text: str) -> dict[str, Any]:
    pairs = LOGFMT_PAIR.findall(text)
    assert " ".join(f"{k}={v}" for k, v in pairs) == text, text  # nothing between the pairs
    return {key: json.loads(value) if value.startswith('"') else value for key, value in pairs}


def parse(format_name: str, line: str) -> dict[str, Any]:
    """A line back as a mapping: the keys of json/logfmt as they are, text's head as time, level, logger, msg."""
    if format_name in ("json", "logstash"):
        parsed: dict[str, Any] = json.loads(line)
        return parsed
    if format_name == "logfmt":
        return parse_logfmt(line)
    head = TEXT_HEAD.match(line)
    assert head is not None, line
    rest = line[head.end() :]
    split = next((at for at in _spaces(rest) if _is_logfmt(rest[at + 1 :])), len(rest))  # the fields are the tail
    fields = parse_logfmt(rest[split + 1 :]) if split < len(rest) else {}
    return {"time": head[1], "level": head[2], "logger": head[3], "msg": rest[:split], **fields}


def _spaces(text: str) -> list[int]:
    return [at for at, char in enumerate(text) if char == " "]


def _is_logfmt(text: str) -> bool:
    return " ".join(f"{k}={v}" for k, v in LOGFMT_PAIR.findall(text)) == text


class Captured:
    def __init__(self, format_name: str) -> None:
        self.format_name = format_name
        self.stream = io.StringIO()

    def lines(self) -> list[str]:
        return [line for line in self.stream.getvalue().splitlines() if line]

    def parsed(self) -> list[dict[str, Any]]:
        return [parse(self.format_name, line) for line in self.lines()]

    def access(self) -> list[dict[str, Any]]:
        return [line for line in self.parsed() if line.get("logger") == ACCESS_LOGGER]


@contextlib.contextmanager
def captured(format_name: str, fields: dict[str, Any] | None = None) -> Iterator[Captured]:
    """Every log line of the block, at DEBUG, through a handler with the formatter under test."""
    capture = Captured(format_name)
    handler = logging.StreamHandler(capture.stream)
    handler.setFormatter(Formatter(format_name, json.dumps(fields or {})))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def message_of(format_name: str, line: dict[str, Any]) -> str:
    key = "message" if format_name == "logstash" else "msg"
    value: str = line[key]
    return value


@pytest.mark.parametrize("format_name", FORMATS)
def test_each_format_parses_back_with_the_level_logger_message_and_fields(format_name: str) -> None:
    with captured(format_name, {"service": "registry", "environment": "staging area"}) as lines:
        extra = {"n": 3, "ratio": 0.25, "flag": True, "quoted": 'say "hi"\nbye', "empty": "", "eq": "a=b"}
        logging.getLogger("registry.test").warning("a %s message", "plain", extra={"fields": extra})
    [line] = lines.parsed()
    assert message_of(format_name, line) == "a plain message"
    assert (line["level"], line["logger"]) == ("warning", "registry.test")
    assert (line["service"], line["environment"], line["quoted"], line["empty"], line["eq"]) == (
        "registry",
        "staging area",
        'say "hi"\nbye',
        "",
        "a=b",
    )
    time_key = "@timestamp" if format_name == "logstash" else "time"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line[time_key])
    if format_name in ("json", "logstash"):
        assert (line["n"], line["ratio"], line["flag"]) == (3, 0.25, True)
    else:
        assert (line["n"], line["ratio"], line["flag"]) == ("3", "0.25", "true")
    assert len(lines.lines()) == 1  # the newline inside a value is escaped


@pytest.mark.parametrize("format_name", ["logfmt", "json", "logstash"])
def test_an_exception_stays_on_its_line_and_a_field_named_like_a_key_is_prefixed(format_name: str) -> None:
    with captured(format_name, {"msg": "static", "level": "x"}) as lines:
        try:
            raise ValueError("broken")
        except ValueError:
            logging.getLogger("registry").exception("failed")
    [line] = lines.parsed()
    assert "ValueError: broken" in line["error"] and message_of(format_name, line) == "failed"
    assert (line["fields.level"], line["level"]) == ("x", "error")
    assert line["fields.msg" if format_name != "logstash" else "msg"] == "static"


def test_text_puts_a_traceback_below_its_line() -> None:
    with captured("text") as lines:
        try:
            raise ValueError("broken")
        except ValueError:
            logging.getLogger("registry").exception("failed")
    first, *rest = lines.lines()
    assert parse("text", first)["msg"] == "failed" and rest[-1] == "ValueError: broken"


@pytest.mark.parametrize("format_name", FORMATS)
async def test_lines_written_while_handling_a_request_carry_its_id(format_name: str) -> None:
    async def handler(request: Request) -> PlainTextResponse:
        logging.getLogger("registry.test").info("inside")
        return PlainTextResponse("ok")

    app = RequestObserving(Starlette(routes=[Route("/", handler)]), [])
    with captured(format_name) as lines:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            await client.get("/", headers={"X-Request-Id": "req-7"})
        logging.getLogger("registry.test").info("outside")
    inside, outside = [line for line in lines.parsed() if line["logger"] == "registry.test"]
    assert inside["http.request.id"] == "req-7" and "http.request.id" not in outside


@pytest.mark.parametrize("format_name", FORMATS)
async def test_the_access_log_has_one_line_per_request_with_its_fields(tmp_path: Path, format_name: str) -> None:
    config_blob, layer = b"{}", b"a layer"
    manifest = image_manifest(config_blob, [layer])
    async with client_on(make_config(tmp_path, "filesystem")) as client:
        with captured(format_name) as lines:
            await push_blob(client, "team/app", config_blob)
            await push_blob(client, "team/app", layer)
            await put_manifest(client, "team/app", "v1", manifest)
            pulled = await client.get("/v2/team/app/manifests/v1", headers={"X-Request-Id": "pull-1"})
            await client.get(f"/v2/team/app/blobs/{digest_of(layer)}")
    access = lines.access()
    assert [message_of(format_name, line) for line in access] == ["response completed"] * 5
    as_text = format_name in ("text", "logfmt")
    keys = ("http.request.method", "http.request.route", "vars.name", "http.response.status")
    assert [tuple(line[key] for key in keys) for line in access] == [
        ("POST", "uploads", "team/app", "201" if as_text else 201),
        ("POST", "uploads", "team/app", "201" if as_text else 201),
        ("PUT", "manifest_put", "team/app", "201" if as_text else 201),
        ("GET", "manifest", "team/app", "200" if as_text else 200),
        ("GET", "blob", "team/app", "200" if as_text else 200),
    ]
    pull = access[3]
    assert pull["http.request.id"] == "pull-1" == pulled.headers["X-Request-Id"]
    assert int(pull["http.response.written"]) == len(manifest) and int(access[2]["http.request.read"]) == len(manifest)
    assert float(pull["http.response.duration"]) >= 0 and pull["http.request.remoteaddr"] == "127.0.0.1"
    assert "auth.user.name" not in pull  # anonymous


async def test_log_accesslog_disabled_writes_no_access_line(tmp_path: Path) -> None:
    config = make_config(tmp_path, "inmemory", REGISTRY_LOG_ACCESSLOG_DISABLED="true")
    async with client_on(config) as client:
        with captured("json") as lines:
            assert (await client.get("/v2/")).status_code == 200
        assert app_of(client).state.request_observers == []
    assert lines.access() == []


USERS = {"alice": "s3cret-alice-pw"}
SECRET_SCOPE = "repository:team/app:pull,push"


def _secrets_in(text: str, secrets: list[str]) -> list[str]:
    return [secret for secret in secrets if secret in text]


@pytest.mark.parametrize("format_name", FORMATS)
async def test_no_password_or_token_reaches_a_log_line(tmp_path: Path, format_name: str) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", USERS)
    access = [{"users": ["alice"], "repositories": ["team/*"], "actions": ["pull", "push"]}]
    server = {"key": str(tmp_path / "token.pem"), "htpasswd": str(htpasswd), "access": access}
    config = config_with(tmp_path, {"token": {"service": "registry.test", "issuer": "test", "server": server}})
    query = {"service": "registry.test", "scope": SECRET_SCOPE, "offline_token": "true"}
    async with client_on(config) as client:
        with captured(format_name) as lines:
            issued = (await client.get("/auth/token", params=query, headers=basic("alice", USERS["alice"]))).json()
            form = {"grant_type": "password", "username": "alice", "password": USERS["alice"], "service": "x"}
            form |= {"service": "registry.test", "scope": SECRET_SCOPE}
            posted = (await client.post("/auth/token", data=form)).json()
            refresh = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
            await client.post("/auth/token", data=refresh | {"service": "registry.test"})
            bearer = {"Authorization": f"Bearer {posted['token']}"}
            assert (await client.get("/v2/team/app/tags/list", headers=bearer)).status_code == 404
            await client.get("/v2/", params={"password": USERS["alice"]}, headers=basic("alice", "wrong-pw-123"))
    text = lines.stream.getvalue()
    basic_value = base64.b64encode(f"alice:{USERS['alice']}".encode()).decode()
    secrets = [USERS["alice"], "wrong-pw-123", basic_value, issued["token"], issued["refresh_token"], posted["token"]]
    assert _secrets_in(text, secrets) == []
    assert [line["http.request.route"] for line in lines.access()] == ["token", "token", "token", "tags", "base"]
    assert lines.access()[3]["auth.user.name"] == "alice"


@pytest.mark.parametrize("format_name", FORMATS)
def test_a_secret_that_reaches_a_message_is_redacted(format_name: str) -> None:
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    with captured(format_name, {"upstream": "https://bob:hunter2@upstream.example/v2/"}) as lines:
        log = logging.getLogger("registry.test")
        log.warning("dsn postgresql://reg:pg-pass-1@db/registry failed")
        log.warning("sent Authorization: Basic %s", base64.b64encode(b"alice:pw-in-basic").decode())
        log.warning("sent Authorization: Bearer %s", token)
        log.warning("asked /token?account=alice&password=qs-pass-2&scope=x", extra={"fields": {"password": "f-pw"}})
    text = lines.stream.getvalue()
    assert _secrets_in(text, ["hunter2", "pg-pass-1", "pw-in-basic", "YWxpY2U6", token, "qs-pass-2", "f-pw"]) == []
    assert len(lines.parsed()) == 4  # still parses
    assert "postgresql://reg:***@db/registry" in text and "account=alice" in text


def test_redact_leaves_ordinary_text_alone() -> None:
    line = 'GET /v2/team/app/manifests/v1 challenge="Bearer realm=x" basic auth http://host:5000/v2/ a=b'
    assert redact(line) == line


def test_log_config_sends_every_logger_to_one_handler_and_the_access_log_at_info() -> None:
    config = log_config("json", {"service": "registry"}, logging.WARNING)
    saved = _logging_state()
    try:
        logging.config.dictConfig(config)
        root = logging.getLogger()
        assert [type(h) for h in root.handlers] == [StderrHandler] and root.level == logging.WARNING
        assert logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO)
        assert not logging.getLogger("registry").isEnabledFor(logging.INFO)
        uvicorn_error = logging.getLogger("uvicorn.error")
        assert uvicorn_error.propagate and not uvicorn_error.handlers and logging.getLogger("uvicorn").propagate
        assert not logging.getLogger("uvicorn.access").propagate
    finally:
        _restore(saved)


def _logging_state() -> dict[str, tuple[list[logging.Handler], int, bool]]:
    loggers = {name: logging.getLogger(name) for name in ["", "uvicorn", "uvicorn.error", "uvicorn.access"]}
    loggers[ACCESS_LOGGER] = logging.getLogger(ACCESS_LOGGER)
    return {name: (logger.handlers[:], logger.level, logger.propagate) for name, logger in loggers.items()}


def _restore(saved: dict[str, tuple[list[logging.Handler], int, bool]]) -> None:
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def test_uvicorn_logs_through_our_config_and_never_writes_its_own_access_log(tmp_path: Path) -> None:
    config = make_config(tmp_path, "inmemory", REGISTRY_LOG_FORMATTER="logfmt", REGISTRY_LOG_LEVEL="debug")
    options = _uvicorn_options(config, 1)
    assert options["access_log"] is False
    assert options["log_config"] == log_config("logfmt", {}, logging.DEBUG)


def test_the_formatter_is_one_of_four() -> None:
    assert load_config(None, {"REGISTRY_LOG_FORMATTER": "logfmt"}).log_formatter == "logfmt"
    with pytest.raises(ConfigError, match="log.formatter"):
        load_config(None, {"REGISTRY_LOG_FORMATTER": "xml"})
