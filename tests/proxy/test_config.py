"""The ``proxy`` (distribution's) and ``proxies`` (ours) sections: typed, and every mistake names its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from registry.config import ConfigError, load_config
from registry.proxy.config import ProxyConfig, Upstream


def proxy_config(raw: dict[str, Any]) -> ProxyConfig:
    return ProxyConfig.from_raw(raw)


def test_distributions_proxy_section_mirrors_the_whole_registry() -> None:
    config = proxy_config(
        {"proxy": {"remoteurl": "https://registry-1.docker.io/", "username": "u", "password": "p", "ttl": "1h"}}
    )
    assert config.upstreams == (Upstream("", "https://registry-1.docker.io", "docker.io", "u", "p", 3600.0),)
    assert config.find("library/alpine") == (config.upstreams[0], "library/alpine")


def test_prefixed_upstreams_and_their_namespaces() -> None:
    config = proxy_config(
        {
            "proxies": {
                "hub": {"remoteurl": "https://registry-1.docker.io"},
                "mirrors/ghcr": {"remoteurl": "https://ghcr.io"},
            }
        }
    )
    hub, ghcr = config.upstreams
    assert config.find("hub/library/alpine") == (hub, "library/alpine")
    assert config.find("mirrors/ghcr/owner/app") == (ghcr, "owner/app")
    assert config.find("hub") is None and config.find("hubby/app") is None and config.find("team/app") is None
    assert config.by_namespace("docker.io") is hub and config.by_namespace("GHCR.IO") is ghcr
    assert hub.local_name("library/alpine") == "hub/library/alpine"


def test_the_password_may_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    section = {"remoteurl": "https://ghcr.io", "username": "bot", "passwordfile": str(secret)}
    assert proxy_config({"proxies": {"ghcr": section}}).upstreams[0].password == "s3cret"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"proxy": {"remoteurl": "ftp://x"}}, "proxy.remoteurl"),
        ({"proxy": {"remoteurl": "https://x", "ttl": "soon"}}, "proxy.ttl"),
        ({"proxy": {"remoteurl": "https://x", "username": "u"}}, "proxy.username"),
        ({"proxy": {"remoteurl": "https://x", "exec": {"command": "helper"}}}, "proxy.exec"),
        ({"proxy": {"remoteurl": "https://x", "pushes": "yes"}}, "proxy.pushes"),
        ({"proxies": {"Hub!": {"remoteurl": "https://x"}}}, "proxies.Hub!"),
        ({"proxies": {"hub": {"remoteurl": "https://x", "colour": 1}}}, "proxies.hub.colour"),
        (
            {"proxies": {"hub": {"remoteurl": "https://x", "passwordfile": "/nonexistent", "username": "u"}}},
            "proxies.hub.passwordfile",
        ),
        ({"proxies": {"a": {"remoteurl": "https://x"}, "b": {"remoteurl": "https://x"}}}, "proxies"),
        ({"proxy": {"remoteurl": "https://x"}, "proxies": {"a": {"remoteurl": "https://y"}}}, "proxies"),
        ({"proxies": ["hub"]}, "proxies"),
    ],
)
def test_a_mistake_names_its_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        proxy_config(raw)
    assert raised.value.key == key


def test_env_overrides_reach_both_sections(tmp_path: Path) -> None:
    environ = {"REGISTRY_STORAGE": "inmemory", "REGISTRY_PROXIES_HUB_REMOTEURL": "https://registry-1.docker.io"}
    config = load_config(None, environ)
    assert config.ignored_sections == () and config.ignored_env == ()
    assert ProxyConfig.from_config(config).find("hub/library/alpine") is not None
    single = load_config(
        None,
        {"REGISTRY_STORAGE": "inmemory", "REGISTRY_PROXY_REMOTEURL": "https://ghcr.io", "REGISTRY_PROXY_TTL": "5m"},
    )
    assert ProxyConfig.from_config(single).upstreams == (Upstream("", "https://ghcr.io", "ghcr.io", ttl=300.0),)
