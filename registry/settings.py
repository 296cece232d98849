"""Configuration keys, declared once: each key's kind (its type, default and checks) in a ``Section``, sections nested
into the one table of ``config.yml`` (``registry.config_schema``). From that table come the typed values, the
``ConfigError`` naming a wrong key in full, the ``REGISTRY_*`` environment overrides (``registry.settings_env``) and
the report of keys the registry ignores.

    Kind                    a value: Str, Text, Bool, Int, Duration, Choice, Strings, Open (a free mapping), Value
      Section               a mapping of named keys (strict: an unknown key is an error, else reported as ignored)
        OneOf               a mapping naming one option (``storage: {s3: ...}``, ``auth: {token: ...}``)
      Items                 a list of mappings, each read by a Section
    Ignored                 a section we do not implement: reported, never read
      Refused               a key we know and do not implement: an error when given

A missing key and a key set to nothing (``key:`` or ``REGISTRY_KEY=``) both take the default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar


class ConfigError(Exception):
    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = " ".join(message.split())
        super().__init__(f"{key}: {self.message}")


def show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_DURATION_PART = r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)"
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` syntax ("168h", "1h30m", "300ms"), in seconds."""
    sign = -1.0 if text.startswith("-") else 1.0
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    if not body or not re.fullmatch(f"(?:{_DURATION_PART})+", body):
        raise ValueError(f"invalid duration {text!r}, expected e.g. '24h', '10m', '30s'")
    return sign * sum(float(num) * _DURATION_UNITS[unit] for num, unit in re.findall(_DURATION_PART, body))


def duration_value(value: Any, key: str) -> float | None:
    """A duration setting (``24h``, ``1h30m``, ``0``) in seconds; None for none; ConfigError naming ``key``."""
    if value is None or (type(value) is int and value == 0):
        return None if value is None else 0.0
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a duration like '24h', got {show(value)}")
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None
    if seconds < 0:
        raise ConfigError(key, f"must not be negative, got {value!r}")
    return seconds


class Ignored:
    """A section (or key) distribution has and we do not implement: reported by ``registry serve``, never read."""


IGNORED = Ignored()


class Refused(Ignored):
    """A key distribution has that we refuse to run without (``proxy.exec``): given, it is an error saying why."""

    def __init__(self, message: str) -> None:
        self.message = message


class Kind:
    """One key: its default, whether it must be given, and a ``check`` run on a given value (it may return another
    value; a ValueError it raises becomes a ConfigError naming the key)."""

    text: ClassVar[bool] = False  # an environment value is kept as text, not read as YAML
    expected = "a value"
    example: ClassVar[tuple[str, Any]] = ("x", "x")  # an environment text and the value it gives (tests)

    def __init__(
        self,
        default: Any = None,
        *,
        required: bool = False,
        always: bool = False,
        check: Callable[[Any], Any] | None = None,
    ) -> None:
        self.default = default
        self.required = required
        self.always = always  # in a section read ``given_only``, present even when not given (with its default)
        self.check = check

    def read(self, value: Any, key: str) -> Any:
        if value is None:
            if self.required:
                raise ConfigError(key, f"expected {self.expected}, got {show(value)}")
            return self.default
        result = self.convert(value, key)
        if self.check is None:
            return result
        try:
            return self.check(result)
        except ConfigError as exc:  # a check shared by several keys (an address) names this one
            raise ConfigError(key, exc.message) from None
        except ValueError as exc:
            raise ConfigError(key, str(exc)) from None

    def convert(self, value: Any, key: str) -> Any:
        return value

    def wrong(self, value: Any, key: str) -> ConfigError:
        return ConfigError(key, f"expected {self.expected}, got {show(value)}")


Value = Kind  # anything, taken as it is


class Str(Kind):
    """A string; a number or a boolean given is taken as its text (``0.1``, ``true``)."""

    text = True
    expected = "a string"

    def convert(self, value: Any, key: str) -> str:
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, str | int | float):
            return str(value)
        raise self.wrong(value, key)


class Text(Kind):
    """A non-empty string; a number is taken as its text."""

    text = True
    expected = "a non-empty string"

    def read(self, value: Any, key: str) -> Any:
        blank = value == "" and self.default is None and not self.required  # an optional key left blank: not given
        return super().read(None if blank else value, key)

    def convert(self, value: Any, key: str) -> str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise self.wrong(value, key)
        return value


class Choice(Str):
    def __init__(self, *choices: str, default: str | None = None, aliases: Mapping[str, str] | None = None) -> None:
        super().__init__(default)
        self.choices = choices
        self.aliases = dict(aliases or {})
        self.expected = f"one of {', '.join(choices)}"

    @property
    def example(self) -> tuple[str, Any]:  # type: ignore[override]
        return self.choices[-1].upper(), self.choices[-1]

    def convert(self, value: Any, key: str) -> str:
        choice = super().convert(value, key).lower()
        choice = self.aliases.get(choice, choice)
        if choice not in self.choices:
            raise ConfigError(key, f"expected {self.expected}, got {choice!r}")
        return choice


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


class Bool(Kind):
    """``true`` or ``false``; ``lenient``: also their spellings as text (``"yes"``, ``"0"``), as a driver takes."""

    expected = "true or false"
    example = ("true", True)

    def __init__(self, default: bool | None = False, *, lenient: bool = False) -> None:
        super().__init__(default)
        self.lenient = lenient

    def convert(self, value: Any, key: str) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if self.lenient else None
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise self.wrong(value, key)


class Int(Kind):
    """An integer within ``minimum``..``maximum``; ``lenient``: also one written as text."""

    expected = "an integer"
    example = ("7", 7)

    def __init__(
        self,
        default: int | None = None,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        lenient: bool = False,
        check: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(default, check=check)
        self.minimum, self.maximum, self.lenient = minimum, maximum, lenient

    def convert(self, value: Any, key: str) -> int:
        number = value if type(value) is int else None  # exact: a bool is no integer here
        if number is None and self.lenient and isinstance(value, str | int | float) and not isinstance(value, bool):
            try:
                number = int(value)
            except ValueError:
                number = None
        if number is None:
            raise self.wrong(value, key)
        if self.minimum is not None and number < self.minimum:
            least = "must not be negative" if self.minimum == 0 else f"must be at least {self.minimum}"
            raise ConfigError(key, f"{least}, got {number}")
        if self.maximum is not None and number > self.maximum:
            raise ConfigError(key, f"must be at most {self.maximum}, got {number}")
        return number


class Duration(Kind):
    """A duration like ``24h`` or ``300ms``, in seconds (``0`` too). ``zero``: what 0 stands for (distribution often
    takes its default); ``never``: ``never`` or ``false`` is None (a tuple: those values, compared with their type,
    so that ``0`` may be a duration or be ``false``); ``seconds``: a number is seconds; ``limit``: a given duration
    must be more than 0 and at most this."""

    expected = "a duration like '24h'"
    example = ("90s", 90.0)

    def __init__(
        self,
        default: Any = None,
        *,
        zero: float | None = 0.0,
        never: bool | tuple[object, ...] = False,
        seconds: bool = False,
        limit: float | None = None,
        check: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(default, check=check)
        self.zero, self.seconds, self.limit = zero, seconds, limit
        self.never: tuple[object, ...] = NEVER if never is True else () if never is False else never

    def convert(self, value: Any, key: str) -> float | None:
        if any(type(value) is type(word) and value == word for word in self.never):
            return None
        if self.seconds and isinstance(value, int | float) and not isinstance(value, bool):
            value = f"{value}s" if value >= 0 else f"-{-value}s"
        if self.limit is not None and not isinstance(value, str):
            raise ConfigError(key, f"expected seconds or a duration like '5m', got {value!r}")
        seconds = duration_value(value, key) if self.limit is None else _within(value, key, self.limit)
        return self.zero if seconds == 0 else seconds


NEVER = (False, "never", "false")


def _within(value: str, key: str, limit: float) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise ConfigError(key, f"expected seconds or a duration like '5m', got {value!r}") from None
    if not 0 < seconds <= limit:
        raise ConfigError(key, f"expected a positive duration, got {value!r}")
    return seconds


class Strings(Kind):
    """A list of non-empty strings; one string is a list of one (``split``: of its words, commas between them too).
    ``each``: a check of every item (it may return another value; its ValueError names the item, ``key[i]``)."""

    expected = "a list of strings"
    example = ("[a, b]", ["a", "b"])

    def __init__(
        self,
        default: Any = None,
        *,
        required: bool = False,
        split: bool = False,
        check: Any = None,
        each: Callable[[str], Any] | None = None,
        expected: str = "",
    ) -> None:
        super().__init__(default, required=required, check=check)
        self.split = split  # and a wrong item is named by the key (the list is one setting), not key[i]
        self.indexed = not split
        self.each = each
        self.expected = expected or self.expected

    def convert(self, value: Any, key: str) -> list[str]:
        if isinstance(value, str):
            value = value.replace(",", " ").split() if self.split else [value]
        if not isinstance(value, list) or (self.required and not value):
            raise self.wrong(value, key)
        for index, item in enumerate(value):
            if (not isinstance(item, str) or not item) and not self.indexed:
                raise self.wrong(value, key)
            if not isinstance(item, str) or not item:
                raise ConfigError(f"{key}[{index}]", f"expected a non-empty string, got {show(item)}")
        return value if self.each is None else [_each(self.each, item, f"{key}[{i}]") for i, item in enumerate(value)]


def _each(check: Callable[[str], Any], item: str, key: str) -> Any:
    try:
        return check(item)
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None


class Open(Kind):
    """A mapping taken as it is (a free-form section: ``log.fields``, ``http.headers``)."""

    expected = "a mapping"
    example = ("{a: b}", {"a": "b"})

    def convert(self, value: Any, key: str) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise self.wrong(value, key)
        return value


class Section(Kind):
    """Named keys. ``read`` gives their typed values, by name; a section not given reads as empty (its defaults).
    ``strict``: another key is an error (``unknown``, the message); otherwise it is reported as ignored, unless
    ``other`` (a node) reads it (``other`` is IGNORED by default)."""

    expected = "a mapping"

    def __init__(
        self,
        keys: Mapping[str, Kind | Ignored],
        *,
        strict: bool = False,
        other: Kind | Ignored = IGNORED,
        unknown: str = "unknown key",
        optional: bool = False,
    ) -> None:
        super().__init__()
        self.keys = dict(keys)
        self.strict, self.other, self.unknown = strict, other, unknown
        self.optional = optional  # not given: None, rather than its keys' defaults

    def child(self, name: str) -> Kind | Ignored:
        return self.keys.get(name, self.other)

    def read(self, value: Any, key: str, *, given_only: bool = False) -> Any:
        if value is None and self.optional:
            return None
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.wrong(value, key)
        self.refuse_unknown(value, key)
        values: dict[str, Any] = {}
        for name, node in self.items(value, given_only):
            if isinstance(node, Kind):
                values[str(name)] = node.read(value.get(name), f"{key}.{name}" if key else str(name))
        return values

    def items(self, value: dict[Any, Any], given_only: bool) -> Iterator[tuple[Any, Kind | Ignored]]:
        """The keys read: every declared one, or (``given_only``) those given, in their order, and the ``always``."""
        if given_only:
            yield from ((name, self.child(name) if isinstance(name, str) else self.other) for name in value)
            yield from ((name, node) for name, node in self.keys.items() if name not in value and _always(node))
            return
        yield from self.keys.items()
        yield from ((name, self.other) for name in value if name not in self.keys and isinstance(self.other, Kind))

    def refuse_unknown(self, value: dict[Any, Any], key: str) -> None:
        for name, node in self.keys.items():
            if isinstance(node, Refused) and value.get(name) is not None:
                raise ConfigError(f"{key}.{name}" if key else name, node.message)
        if self.strict:
            unknown = sorted(str(name) for name in value if name not in self.keys)
            if unknown:
                where = f"{key}.{unknown[0]}" if key else unknown[0]
                raise ConfigError(where, f"{self.unknown}, expected one of {', '.join(self.keys)}")


def _always(node: Kind | Ignored) -> bool:
    return isinstance(node, Kind) and (node.always or node.required)


class OneOf(Section):
    """A mapping naming one option beside the section's own keys (``storage``: a driver beside ``delete``...), or
    just the option's name as a string (``storage: inmemory``). ``options`` gives an option's section by name."""

    def __init__(self, keys: Mapping[str, Kind | Ignored], options: Callable[[str], Section | None], what: str) -> None:
        super().__init__(keys, other=Open())
        self.options = options
        self.what = what  # "driver", "provider"

    def child(self, name: str) -> Kind | Ignored:
        return self.keys.get(name) or self.options(name) or self.other

    def chosen(self, value: dict[Any, Any]) -> list[Any]:
        return [name for name in value if name not in self.keys]


class Items(Kind):
    """A list of mappings, each read by ``section``; item ``i`` of key ``k`` is named ``k[i]``."""

    expected = "a list"
    example = ("[]", [])

    def __init__(self, section: Section) -> None:
        super().__init__([])
        self.section = section

    def convert(self, value: Any, key: str) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise self.wrong(value, key)
        return [self.section.read(item, f"{key}[{index}]") for index, item in enumerate(value)]


def leaves(section: Section, prefix: str = "") -> Iterator[tuple[str, Kind]]:
    """Every declared key below ``section`` with its dotted name (the options of a OneOf are not included)."""
    for name, node in section.keys.items():
        if isinstance(node, Section):
            yield from leaves(node, f"{prefix}{name}.")
        elif isinstance(node, Kind):
            yield f"{prefix}{name}", node


def ignored_keys(node: dict[Any, Any], schema: Section, prefix: str = "") -> list[str]:
    """The keys of ``node`` that ``schema`` does not read, with their dotted names."""
    found: list[str] = []
    for key, value in node.items():
        child = schema.child(key) if isinstance(key, str) else IGNORED
        if isinstance(child, Ignored) and not isinstance(child, Refused):
            found.append(f"{prefix}{key}")
        elif isinstance(child, Section) and isinstance(value, dict) and not child.strict:
            found.extend(ignored_keys(value, child, f"{prefix}{key}."))
    return found
