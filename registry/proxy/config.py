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
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from registry.names import is_valid_name
from registry.settings import Bool, ConfigError, Duration, Refused, Section, Text
from registry.settings_http import Url

if TYPE_CHECKING:
    from registry.config import Config

DEFAULT_TTL = 0.0  # distribution asks the upstream for a tag on every pull; a HEAD does not count against a rate limit
DOCKER_HUB_HOSTS = frozenset({"registry-1.docker.io", "index.docker.io", "docker.io"})
HUB = "https://registry-1.docker.io"


def _upstream_keys(*, required: bool) -> dict[str, Any]:
    return {
        "remoteurl": Url(required=required, base=True, like=HUB),
        **dict.fromkeys(("username", "password", "passwordfile", "namespace"), Text()),
        **{"ttl": Duration(DEFAULT_TTL), "pushes": Bool(False)},
    }


PROXY = Section(  # distribution's: without a remoteurl, no proxy
    {
        **_upstream_keys(required=False),
        "exec": Refused("credential helpers are not supported: use username and password(file)"),
    },
    strict=True,
)
PROXIES = Section({}, other=Section(_upstream_keys(required=True), strict=True))  # ours: an upstream per prefix


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
        single = PROXY.read(raw.get("proxy"), "proxy")
        upstreams = [_upstream("", single, "proxy")] if single["remoteurl"] is not None else []
        for prefix, section in PROXIES.read(raw.get("proxies"), "proxies").items():
            key = f"proxies.{prefix}"
            upstreams.append(_upstream(_prefix(prefix, key), section, key))
        if len(upstreams) > 1 and any(not upstream.prefix for upstream in upstreams):
            raise ConfigError("proxies", "the proxy section mirrors the whole registry: it leaves no room for others")
        _unique([u.prefix for u in upstreams], "prefix")
        _unique([u.namespace for u in upstreams], "namespace")
        return cls(tuple(upstreams))


def _upstream(prefix: str, values: dict[str, Any], key: str) -> Upstream:
    url, username, password = values["remoteurl"], values["username"], _password(values, key)
    if (username is None) != (password is None):
        raise ConfigError(f"{key}.username", "username and password (or passwordfile) go together")
    namespace = values["namespace"] or _default_namespace(url)
    return Upstream(prefix, url, namespace.lower(), username, password, values["ttl"], values["pushes"])


def _default_namespace(url: str) -> str:
    host = urlsplit(url).netloc.lower()
    return "docker.io" if host in DOCKER_HUB_HOSTS else host


def _password(values: dict[str, Any], key: str) -> str | None:
    password: str | None = values["password"]
    path = values["passwordfile"]
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


def _prefix(prefix: str, key: str) -> str:
    if not is_valid_name(prefix):
        raise ConfigError(key, f"expected a repository namespace like dockerhub or mirrors/ghcr, got {prefix!r}")
    return prefix


def _unique(values: list[str], what: str) -> None:
    for index, value in enumerate(values):
        if value in values[:index]:
            raise ConfigError("proxies", f"two upstreams share the {what} {value!r}")
