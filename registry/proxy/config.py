"""The pull-through cache's upstreams: distribution's ``proxy`` section (the whole registry mirrors one upstream) and
ours, ``proxies`` (several upstreams, each under a namespace prefix; repositories outside them take pushes).

proxy:                                   # distribution's: every repository is a mirror of the upstream's
  remoteurl: https://registry-1.docker.io
  username: alice                        # Basic, or the credentials sent to the upstream's token service
  password: secret                       # or passwordfile: /run/secrets/hub (ours; its first line)
  ttl: 5m                                # a tag is trusted this long, then revalidated with a HEAD (0: every pull)
  pushes: false                          # ours: pushes refused with 405 UNSUPPORTED, as distribution does
proxies:                                 # ours: local prefix -> upstream
  dockerhub:                             # dockerhub/library/alpine -> registry-1.docker.io/library/alpine
    remoteurl: https://registry-1.docker.io
    namespace: docker.io                 # the ``ns`` query parameter naming this upstream (default: its host)
  ghcr: {remoteurl: https://ghcr.io}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from registry.config import Config, ConfigError, duration_value
from registry.names import is_valid_name

UPSTREAM_KEYS = ("remoteurl", "username", "password", "passwordfile", "ttl", "pushes", "namespace")
PROXY_KEYS = (*UPSTREAM_KEYS, "exec")  # exec: distribution's credential helper, not implemented (refused)
DEFAULT_TTL = 0.0  # distribution asks the upstream for a tag on every pull; a HEAD does not count against a rate limit
DOCKER_HUB_HOSTS = frozenset({"registry-1.docker.io", "index.docker.io", "docker.io"})


@dataclass(frozen=True)
class Upstream:
    prefix: str  # the local namespace ("" : the whole registry, distribution's mode)
    remoteurl: str
    namespace: str  # the ``ns`` value (spec.md "Registry Proxying") naming this upstream
    username: str | None = None
    password: str | None = None
    ttl: float = DEFAULT_TTL
    pushes: bool = False

    def remote_name(self, repo: str) -> str | None:
        """The upstream's name for a local repository, None when the repository is outside this upstream's prefix."""
        if not self.prefix:
            return repo
        head = self.prefix + "/"
        return repo[len(head) :] if repo.startswith(head) and len(repo) > len(head) else None

    def local_name(self, remote: str) -> str:
        return f"{self.prefix}/{remote}" if self.prefix else remote


@dataclass(frozen=True)
class ProxyConfig:
    upstreams: tuple[Upstream, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.upstreams)

    def find(self, repo: str) -> tuple[Upstream, str] | None:
        """The upstream a local repository mirrors (the longest prefix that holds it), with the upstream's name."""
        for upstream in sorted(self.upstreams, key=lambda u: len(u.prefix), reverse=True):
            remote = upstream.remote_name(repo)
            if remote is not None:
                return upstream, remote
        return None

    def by_namespace(self, namespace: str) -> Upstream | None:
        found = [upstream for upstream in self.upstreams if upstream.namespace == namespace.lower()]
        return found[0] if found else None

    @classmethod
    def from_config(cls, config: Config) -> ProxyConfig:
        return cls.from_raw(config.raw)

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> ProxyConfig:
        upstreams: list[Upstream] = []
        single = _mapping(raw.get("proxy"), "proxy", PROXY_KEYS)
        if single.get("exec") is not None:
            raise ConfigError("proxy.exec", "credential helpers are not supported: use username and password(file)")
        if single.get("remoteurl") is not None:
            upstreams.append(_upstream("", single, "proxy"))
        for prefix, section in _mapping(raw.get("proxies"), "proxies", None).items():
            key = f"proxies.{prefix}"
            upstreams.append(_upstream(_prefix(prefix, key), _mapping(section, key, UPSTREAM_KEYS), key))
        if len(upstreams) > 1 and any(not upstream.prefix for upstream in upstreams):
            raise ConfigError("proxies", "the proxy section mirrors the whole registry: it leaves no room for others")
        _unique([u.prefix for u in upstreams], "prefix")
        _unique([u.namespace for u in upstreams], "namespace")
        return cls(tuple(upstreams))


def _upstream(prefix: str, section: dict[str, Any], key: str) -> Upstream:
    url = _url(section.get("remoteurl"), f"{key}.remoteurl")
    username = _opt_text(section.get("username"), f"{key}.username")
    password = _password(section, key)
    if (username is None) != (password is None):
        raise ConfigError(f"{key}.username", "username and password (or passwordfile) go together")
    namespace = _opt_text(section.get("namespace"), f"{key}.namespace") or _default_namespace(url)
    ttl = duration_value(section.get("ttl"), f"{key}.ttl")
    pushes = section.get("pushes", False)
    if not isinstance(pushes, bool):
        raise ConfigError(f"{key}.pushes", f"expected true or false, got {pushes!r}")
    return Upstream(prefix, url, namespace.lower(), username, password, DEFAULT_TTL if ttl is None else ttl, pushes)


def _default_namespace(url: str) -> str:
    host = urlsplit(url).netloc.lower()
    return "docker.io" if host in DOCKER_HUB_HOSTS else host


def _password(section: dict[str, Any], key: str) -> str | None:
    password = _opt_text(section.get("password"), f"{key}.password")
    path = _opt_text(section.get("passwordfile"), f"{key}.passwordfile")
    if path is None:
        return password
    if password is not None:
        raise ConfigError(f"{key}.passwordfile", "give password or passwordfile, not both")
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{key}.passwordfile", f"cannot read {path}: {exc}") from None
    if not lines or not lines[0].strip():
        raise ConfigError(f"{key}.passwordfile", f"{path} is empty")
    return lines[0].strip()


def _prefix(prefix: Any, key: str) -> str:
    if not isinstance(prefix, str) or not is_valid_name(prefix):
        raise ConfigError(key, f"expected a repository namespace like dockerhub or mirrors/ghcr, got {prefix!r}")
    return prefix


def _unique(values: list[str], what: str) -> None:
    for index, value in enumerate(values):
        if value in values[:index]:
            raise ConfigError("proxies", f"two upstreams share the {what} {value!r}")


def _mapping(value: Any, key: str, allowed: tuple[str, ...] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a mapping, got {value!r}")
    unknown = sorted(str(name) for name in value if allowed is not None and name not in allowed)
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"unknown key, expected one of {', '.join(allowed or ())}")
    return value


def _opt_text(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise ConfigError(key, f"expected a non-empty string, got {value!r}")
    return value


def _url(value: Any, key: str) -> str:
    url = _opt_text(value, key)
    parts = urlsplit(url or "")
    if url is None or parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(key, f"expected an http or https URL like https://registry-1.docker.io, got {value!r}")
    return url.rstrip("/")
