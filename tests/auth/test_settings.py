"""The ``auth`` section: distribution's providers, our ``auth.token.server``, and one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from registry.auth.build import build_auth
from registry.auth.settings import TokenSettings, auth_settings
from registry.config import ConfigError
from tests.auth.helpers import config_with

BASE = {"service": "s", "issuer": "i"}


def test_server_defaults(tmp_path: Path) -> None:
    settings = auth_settings(config_with(tmp_path, {"token": BASE | {"server": {"key": "/k.pem"}}}))
    assert isinstance(settings, TokenSettings) and settings.server is not None
    assert settings.realm is None and settings.server.path == "/auth/token"
    assert settings.server.expiration == 300 and settings.server.refresh_expiration == 30 * 86400


def test_durations_take_seconds_or_go_durations(tmp_path: Path) -> None:
    server = {"key": "/k", "expiration": "10m", "refreshexpiration": 3600}
    settings = auth_settings(config_with(tmp_path, {"token": BASE | {"server": server}}))
    assert isinstance(settings, TokenSettings) and settings.server is not None
    assert (settings.server.expiration, settings.server.refresh_expiration) == (600, 3600)


@pytest.mark.parametrize(
    ("token", "key"),
    [
        ({"issuer": "i", "server": {"key": "k"}}, "auth.token.service"),
        (BASE | {"server": {}}, "auth.token.server.key"),
        (BASE | {"server": {"key": "k", "path": "/v2/token"}}, "auth.token.server.path"),
        (BASE | {"server": {"key": "k", "expiration": "-5m"}}, "auth.token.server.expiration"),
        (BASE | {"server": {"key": "k", "expiration": True}}, "auth.token.server.expiration"),
        (BASE | {"server": {"key": "k", "access": {"users": ["a"]}}}, "auth.token.server.access"),
        (BASE | {"server": {"key": "k", "access": [{"repositories": ["x"]}]}}, "auth.token.server.access[0]"),
        (BASE | {"server": {"key": "k", "access": [{"users": ["a"], "actions": ["write"]}]}}, "[0].actions"),
        (BASE | {"server": {"key": "k", "access": [{"users": ["a"], "colour": 1}]}}, "access[0]"),
        (BASE | {"server": {"key": "k", "groups": ["a"]}}, "auth.token.server.groups"),
        (BASE | {"server": "yes"}, "auth.token.server"),
        (BASE | {"realm": "r", "rootcertbundle": "/b", "signingalgorithms": ["HS256"]}, "signingalgorithms"),
    ],
)
def test_wrong_token_settings_name_the_key(tmp_path: Path, token: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as error:
        auth_settings(config_with(tmp_path, {"token": token}))
    assert key in error.value.key or key in str(error.value)


@pytest.mark.parametrize(
    ("auth", "key"),
    [
        ({"token": BASE | {"realm": "r", "rootcertbundle": "/absent.pem"}}, "auth.token.rootcertbundle"),
        ({"token": BASE | {"realm": "r", "jwks": "/absent.json"}}, "auth.token.jwks"),
        ({"token": BASE | {"server": {"key": "/proc/forbidden/k.pem"}}}, "auth.token.server.key"),
        ({"token": BASE | {"server": {"key": "KEY", "htpasswd": "/absent"}}}, "auth.token.server.htpasswd"),
        ({"htpasswd": {"realm": "r", "path": "/absent"}}, "auth.htpasswd.path"),
        ({"htpasswd": {"path": "/absent"}}, "auth.htpasswd.realm"),
    ],
)
def test_files_that_cannot_be_read_are_config_errors(tmp_path: Path, auth: dict[str, Any], key: str) -> None:
    if "token" in auth and "server" in auth["token"] and auth["token"]["server"]["key"] == "KEY":
        auth["token"]["server"]["key"] = str(tmp_path / "key.pem")
    with pytest.raises(ConfigError) as error:
        build_auth(config_with(tmp_path, auth))
    assert error.value.key == key


def test_a_bad_key_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="auth.token.server.key"):
        build_auth(config_with(tmp_path, {"token": BASE | {"server": {"key": str(tmp_path / "key.pem")}}}))
