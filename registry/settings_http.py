"""Kinds of configuration value that HTTP gives (``registry.settings`` has the others): a URL, and headers."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from registry.settings import ConfigError, Open, Str, Text, show

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110's token: what a header name may be


class Url(Text):
    """An absolute http or https URL. ``base``: without a query or fragment, its trailing ``/`` dropped (a URL that
    paths are added to); ``like``: an example for the message."""

    example = ("http://registry.example:5000", "http://registry.example:5000")

    def __init__(self, *, required: bool = False, base: bool = False, like: str = "") -> None:
        super().__init__(required=required)
        self.base = base
        self.expected = f"an http or https URL like {like}" if like else "an http or https URL"

    def convert(self, value: Any, key: str) -> str:
        url = super().convert(value, key)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or (self.base and (parts.query or parts.fragment)):
            raise ConfigError(key, f"expected {self.expected}, got {url!r}")
        return url.rstrip("/") if self.base else url


class Headers(Open):
    """Headers as distribution's ``http.Header``: each name with a string or a list of strings; ``tokens``: a name
    must be an RFC 9110 token."""

    example = ("{X-A: b}", {"X-A": ["b"]})

    def __init__(self, *, tokens: bool = False) -> None:
        super().__init__()
        self.tokens = tokens

    def convert(self, value: Any, key: str) -> dict[str, list[str]]:
        headers: dict[str, list[str]] = {}
        for name, given in super().convert(value, key).items():
            if self.tokens and not _TOKEN.fullmatch(str(name)):
                raise ConfigError(f"{key}.{name}", "expected a header name (letters, digits and !#$%&'*+-.^_`|~)")
            items = given if isinstance(given, list) else [given]
            texts = [Str().read(item, key) if isinstance(item, str | int | float) else None for item in items]
            if any(text is None or "\r" in text or "\n" in text for text in texts):
                raise ConfigError(f"{key}.{name}", f"expected a string or a list of strings, got {show(given)}")
            headers[str(name)] = [str(text) for text in texts]
        return headers
