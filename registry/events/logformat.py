"""Log lines as ``log.formatter`` names them, with ``log.fields`` on every line, for our loggers and uvicorn's.

    text      2026-01-02T03:04:05.678Z info registry.access: response completed http.request.id=... (traceback below)
    logfmt    time=2026-01-02T03:04:05.678Z level=info logger=registry.access msg="response completed" key=value ...
    json      {"time": "...", "level": "info", "logger": "...", "msg": "...", "key": value, ...}
    logstash  {"@timestamp": "...", "@version": "1", "level": "info", "logger": "...", "message": "...", ...}

A line's own fields (``extra={"fields": {...}}``) come after the static ones and the request id of the request being
handled (``http.request.id``). A field named like a line's own key is prefixed ``fields.``, as logrus does. Every
finished line goes through ``redact``: a password or token that reached a message (a URL's ``user:password@``, an
``Authorization`` value, ``password=``) leaves as ``***``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from registry.events.accesslog import ACCESS_LOGGER
from registry.events.requests import current_request_id

FORMATS = ("text", "logfmt", "json", "logstash")
_LOGFMT_BARE = re.compile(r"[^\s=\"\\]+")
_KEY_UNSAFE = re.compile(r"[\s=\"\\]")
_KEYS: dict[str, str] = {}
_SECRET_NAMES = "password|passwd|secret|token|access_token|refresh_token|client_secret"
_SECRET_HINTS = ("basic", "bearer", "://", "pass", "secret", "token")  # a line holding none (lowercased) is clean
# (words one of which a line holds, lowercased, before the pattern is worth running; the pattern; its replacement)
_SECRETS = (
    (("basic", "bearer"), re.compile(r"(?i)\b(basic|bearer)(\s+)[A-Za-z0-9._~+/-]{8,}=*"), r"\1\2***"),
    (("://",), re.compile(r"(://[^/\s:@]*):[^/\s@]+@"), r"\1:***@"),
    (("pass", "secret", "token"), re.compile(rf"(?i)\b({_SECRET_NAMES})=[^&\s\"]+"), r"\1=***"),
    (("pass", "secret", "token"), re.compile(rf'(?i)("(?:{_SECRET_NAMES})"\s*:\s*)"(?:[^"\\]|\\.)*"'), r'\1"***"'),
)


def redact(line: str) -> str:
    lowered = line.lower()
    if not any(hint in lowered for hint in _SECRET_HINTS):
        return line
    for hints, pattern, replacement in _SECRETS:
        if any(hint in lowered for hint in hints):
            line = pattern.sub(replacement, line)
    return line


_second: list[Any] = [None, ""]  # the last second formatted, and how: lines come many a second


def timestamp(created: float) -> str:
    seconds = int(created)
    if _second[0] != seconds:
        _second[:] = [seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))]
    return f"{_second[1]}.{int((created - seconds) * 1000):03d}Z"


def _level(record: logging.LogRecord) -> str:
    return record.levelname.lower()


class Formatter(logging.Formatter):
    """``format_name``: one of ``FORMATS``; ``fields_json``: ``log.fields`` as JSON (``logging.config.dictConfig``
    would otherwise read a ``cfg://`` or ``ext://`` value as a reference)."""

    def __init__(self, format_name: str = "text", fields_json: str = "{}") -> None:
        super().__init__()
        if format_name not in FORMATS:
            raise ValueError(f"expected one of {', '.join(FORMATS)}, got {format_name!r}")
        self.format_name = format_name
        self.static: dict[str, Any] = json.loads(fields_json)
        # no line shows a process id or a thread or process name: logging need not look them up for each record
        # (a system call for the process id), as the logging HOWTO's "Optimization" says
        logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False

    def format(self, record: logging.LogRecord) -> str:
        head = {"time": timestamp(record.created), "level": _level(record), "logger": record.name}
        head["msg"] = record.getMessage()
        fields = dict(self.static)
        request_id = current_request_id()
        if request_id is not None:
            fields["http.request.id"] = request_id
        fields.update(getattr(record, "fields", None) or {})
        error = self.formatException(record.exc_info) if record.exc_info else None
        return redact(_RENDERERS[self.format_name](head, fields, error))


def _merged(head: dict[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    line = dict(head)
    for key, value in fields.items():
        line[f"fields.{key}" if key in head else key] = value
    return line


def _text(head: dict[str, Any], fields: Mapping[str, Any], error: str | None) -> str:
    pairs = " ".join(f"{_key(key)}={_value(value)}" for key, value in fields.items())
    line = f"{head['time']} {head['level']} {head['logger']}: {head['msg']}" + (f" {pairs}" if pairs else "")
    return f"{line}\n{error}" if error else line


def _logfmt(head: dict[str, Any], fields: Mapping[str, Any], error: str | None) -> str:
    line = _merged(head, fields)
    if error:
        line["error"] = error
    return " ".join(f"{_key(key)}={_value(value)}" for key, value in line.items())


def _json(head: dict[str, Any], fields: Mapping[str, Any], error: str | None) -> str:
    line = _merged(head, fields)
    if error:
        line["error"] = error
    return json.dumps(line, default=str, ensure_ascii=False)


def _logstash(head: dict[str, Any], fields: Mapping[str, Any], error: str | None) -> str:
    renamed = {"@timestamp": head["time"], "@version": "1", "level": head["level"], "logger": head["logger"]}
    return _json({**renamed, "message": head["msg"]}, fields, error)


_RENDERERS: dict[str, Callable[[dict[str, Any], Mapping[str, Any], str | None], str]] = {
    "text": _text,
    "logfmt": _logfmt,
    "json": _json,
    "logstash": _logstash,
}


def _key(key: str) -> str:
    safe = _KEYS.get(key)
    if safe is None:
        safe = _KEY_UNSAFE.sub("_", key) or "_"
        if len(_KEYS) < 1024:  # the keys are few and fixed; a flood of new ones is not kept
            _KEYS[key] = safe
    return safe


def _value(value: Any) -> str:
    """logfmt: bare when it can be, else a JSON string (quotes, backslashes and control characters escaped)."""
    kind = type(value)
    if kind is int or kind is float:
        return str(value)
    text = value if kind is str else json.dumps(value, default=str)
    if _LOGFMT_BARE.fullmatch(text) and text.isprintable():
        return text
    return json.dumps(text, ensure_ascii=False)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is when each line is written (as logging's last resort does), not to the
    stream it was when logging was configured."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def log_config(format_name: str, fields: Mapping[str, Any], level: int) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server and each of its workers (uvicorn applies it in each): one
    stderr handler on the root logger; uvicorn's loggers pass their lines to it; the access log at INFO whatever
    ``level`` is (``registry.events.accesslog``)."""
    formatter = {
        "()": f"{__name__}.Formatter",
        "format_name": format_name,
        "fields_json": json.dumps(fields, default=str),
    }
    uvicorn = {"handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"registry": formatter},
        "handlers": {"stderr": {"()": f"{__name__}.StderrHandler", "formatter": "registry"}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {**uvicorn, "level": level},
            "uvicorn.error": uvicorn,
            "uvicorn.access": {"handlers": [], "propagate": False},
            ACCESS_LOGGER: {"level": logging.INFO},
        },
    }
