"""The store is closed to other users (CVE-2021-41091): 0700 directories, 0600 container files, old stores fixed."""

from __future__ import annotations

import stat
from pathlib import Path

from runtime.store import Store, write_json_atomic

DIRS = ("", "blobs", "blobs/sha256", "tmp", "layers", "containers")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_new_store_is_private(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    assert {d: mode(store.root / d) for d in DIRS} == {d: 0o700 for d in DIRS}
    write_json_atomic(store.root / "images.json", {"images": {}})
    assert mode(store.root / "images.json") == 0o600


def test_an_old_store_open_to_all_is_closed_on_first_use(tmp_path: Path) -> None:
    root = tmp_path / "store"
    for d in DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
        (root / d).chmod(0o755)
    root.chmod(0o711)
    container = root / "containers" / ("c" * 64)
    container.mkdir()
    for name in ("config.json", "container.json", "state.json"):
        (container / name).write_text("{}")
        (container / name).chmod(0o644)
    (container / "hosts").write_text("127.0.0.1 localhost\n")  # bind-mounted: the container's users read it

    Store(root)
    assert {d: mode(root / d) for d in DIRS} == {d: 0o700 for d in DIRS}
    assert {p.name: mode(p) for p in container.iterdir()} == {
        "config.json": 0o600,
        "container.json": 0o600,
        "state.json": 0o600,
        "hosts": 0o644,
    }


def test_files_written_for_a_container_are_0600(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{}")
    path.chmod(0o644)
    write_json_atomic(path, {"process": {"env": ["SECRET=hunter2"]}})
    assert mode(path) == 0o600
