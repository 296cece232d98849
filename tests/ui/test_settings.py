"""The ``ui`` section: served at ``/`` by default, at ``ui.path`` when set, not at all when disabled; never below
``/v2`` and never in the way of the API's routes (a wrong method on one is still the API's 405)."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.app import create_app
from registry.config import ConfigError
from tests.api_helpers import assert_error, push_image
from tests.auth.helpers import config_with
from tests.conftest import make_config
from tests.ui.helpers import ui_client


async def test_the_api_keeps_its_routes_and_answers_beside_the_ui(tmp_path: Path) -> None:
    async with ui_client(tmp_path) as client:
        await push_image(client, "app", "v1")
        assert (await client.get("/v2/")).json() == {}
        assert_error(await client.post("/v2/"), 405, "UNSUPPORTED")
        assert_error(await client.get("/v2/nothing/tags/list"), 404, "NAME_UNKNOWN")
        assert_error(await client.get("/elsewhere"), 404, "UNSUPPORTED")
        assert (await client.get("/")).status_code == 200


async def test_disabled_the_ui_has_no_route(tmp_path: Path) -> None:
    async with ui_client(tmp_path, REGISTRY_UI_ENABLED="false") as client:
        assert_error(await client.get("/"), 404, "UNSUPPORTED")
        assert_error(await client.get("/static/ui.css"), 404, "UNSUPPORTED")
        assert (await client.get("/v2/")).status_code == 200


async def test_the_ui_is_served_at_its_path_under_the_prefix(tmp_path: Path) -> None:
    async with ui_client(tmp_path, REGISTRY_UI_PATH="/console", REGISTRY_HTTP_PREFIX="/registry") as client:
        page = await client.get("/registry/console/")
        assert page.status_code == 200
        assert 'href="/registry/console/static/ui.css"' in page.text
        assert (await client.get("/registry/console/static/ui.css")).status_code == 200
        assert (await client.get("/")).status_code == 404


@pytest.mark.parametrize("path", ["/v2", "/v2/ui", "ui", "/a b", "/x?y"])
def test_a_ui_path_below_v2_or_not_a_path_is_refused(tmp_path: Path, path: str) -> None:
    config = make_config(tmp_path, "inmemory", REGISTRY_UI_PATH=path)
    with pytest.raises(ConfigError, match=r"ui\.path"):
        create_app(config)  # as serve builds it: a mistake stops the start


def test_a_ui_page_at_the_token_services_path_is_refused(tmp_path: Path) -> None:
    server = {"key": str(tmp_path / "key.pem"), "path": "/login"}
    config = config_with(tmp_path, {"token": {"service": "s", "issuer": "i", "server": server}})
    with pytest.raises(ConfigError, match=r"ui\.path.*token service"):
        create_app(config)
    moved = config_with(tmp_path, {"token": {"service": "s", "issuer": "i", "server": server}}, ui={"path": "/ui/"})
    create_app(moved)
