"""What every page is made of: every visible input has a label, the landmarks are there, controls are links and
buttons (no click handlers on other elements), and the templates and static files are package data (a wheel has
them)."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path

import httpx

from tests.api_helpers import client_on, push_image
from tests.auth.helpers import config_with, write_htpasswd
from tests.ui.helpers import push_index, ui_client

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "registry" / "ui"
INPUT = re.compile(r"<input\b[^>]*>")


def _labelled(page: httpx.Response) -> None:
    labels = set(re.findall(r'<label for="([^"]+)"', page.text))
    for tag in INPUT.findall(page.text):
        if 'type="hidden"' in tag:
            continue
        found = re.search(r'id="([^"]+)"', tag)
        assert found is not None and found.group(1) in labels, f"an input without a label: {tag}"
    assert '<main id="main"' in page.text and 'role="banner"' in page.text and 'role="contentinfo"' in page.text
    assert "onclick" not in page.text and "<div" not in page.text  # controls are links and buttons


async def test_every_page_labels_its_inputs_and_has_landmarks(tmp_path: Path) -> None:
    async with ui_client(tmp_path) as client:
        _, digest = await push_image(client, "app", "v1")
        index = await push_index(client, "multi", "latest", [("linux", "amd64")])
        for path in ("/", "/r/app", f"/r/app/manifests/{digest}", f"/r/app/manifests/{digest}/delete", "/gc"):
            page = await client.get(path)
            assert page.status_code == 200, path
            _labelled(page)
        _labelled(await client.get(f"/r/multi/manifests/{index}"))
        _labelled(await client.get("/r/nothing"))


async def test_the_sign_in_form_labels_its_inputs(tmp_path: Path) -> None:
    path = write_htpasswd(tmp_path / "htpasswd", {"alice": "pw"})
    async with client_on(config_with(tmp_path, {"htpasswd": {"realm": "r", "path": str(path)}})) as client:
        page = await client.get("/login")
        _labelled(page)
        assert 'autocomplete="current-password"' in page.text


def test_the_templates_and_static_files_are_package_data() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["registry.ui"]
    files = [
        p.relative_to(UI).as_posix() for p in UI.rglob("*") if p.is_file() and p.parent.name in ("templates", "static")
    ]
    assert files
    for name in files:
        assert any(fnmatchcase(name, pattern) for pattern in data), f"{name} would be missing from a wheel"
