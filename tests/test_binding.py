"""The database bound to its storage: it records the storage it indexes, and serve, import and gc refuse another;
serve refuses a storage holding distribution's repositories that were never imported (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from registry import cli
from registry.config import Config, load_config
from registry.content import binding, paths
from registry.content.binding import BindingError, StorageIdentity
from registry.db import migrate
from registry.db.engine import Database
from storage_backends import create_backend
from tests.conftest import s3_config
from tests.s3server import MotoServer


def write_config(tmp_path: Path, root: str, database_url: str) -> Path:
    doc = {"version": "0.1", "storage": {"filesystem": {"rootdirectory": root}}, "database": {"url": database_url}}
    path = tmp_path / f"config-{Path(root).name}.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def bound(config: Config, *, rebind: bool = False) -> None:
    database = Database(config.database_url)
    try:
        await migrate.upgrade(database)
        await binding.bind(database, config.storage, rebind=rebind)
    finally:
        await database.dispose()


async def test_a_database_made_for_one_root_refuses_another_until_rebound(tmp_path: Path, database_url: str) -> None:
    first = load_config(str(write_config(tmp_path, str(tmp_path / "one"), database_url)))
    second = load_config(str(write_config(tmp_path, str(tmp_path / "two"), database_url)))
    await bound(first)
    await bound(first)  # the same storage again: fine
    with pytest.raises(BindingError) as refused:
        await bound(second)
    message = str(refused.value)
    assert f"indexes filesystem storage {tmp_path / 'one'}" in message
    assert f"names filesystem storage {tmp_path / 'two'}" in message
    assert "database.url" in message and "registry import --rebind" in message
    await bound(second, rebind=True)
    await bound(second)
    with pytest.raises(BindingError):
        await bound(first)


async def test_a_database_made_for_one_bucket_refuses_another(
    tmp_path: Path, database_url: str, moto_s3: MotoServer
) -> None:
    db = database_url
    first = s3_config(tmp_path, moto_s3, REGISTRY_DATABASE_URL=db)
    second = s3_config(tmp_path, moto_s3, REGISTRY_DATABASE_URL=db)
    await bound(first)
    with pytest.raises(BindingError) as refused:
        await bound(second)
    for config in (first, second):
        assert StorageIdentity.of(config.storage).describe() in str(refused.value)
    assert str(first.storage.params["bucket"]) in StorageIdentity.of(first.storage).describe()


def test_registry_gc_refuses_a_database_that_indexes_another_storage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database_url = f"sqlite:///{tmp_path}/registry.db"
    asyncio.run(bound(load_config(str(write_config(tmp_path, str(tmp_path / "one"), database_url)))))
    with pytest.raises(SystemExit) as exited:
        cli.main(["gc", str(write_config(tmp_path, str(tmp_path / "two"), database_url))])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("registry: the database") and "indexes filesystem storage" in err, err


def serve_until_it_refuses(config: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "registry", "serve", str(config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


async def test_serve_refuses_distribution_data_never_imported_and_starts_once_imported(
    tmp_path: Path, database_url: str
) -> None:
    root = tmp_path / "data"
    config_path = write_config(tmp_path, str(root), database_url)
    backend = create_backend("filesystem", {"rootdirectory": str(root)})
    await backend.put_content(f"{paths.manifest_tags_dir('team/app')}/v1/current/link", b"sha256:" + b"0" * 64)
    refused = await asyncio.to_thread(serve_until_it_refuses, config_path)
    assert refused.returncode == 1, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert lines[-1].startswith("registry: the storage holds repositories distribution"), refused.stderr
    assert f"run `registry import {config_path}` first" in lines[-1]

    config = load_config(str(config_path))
    database = Database(config.database_url)
    try:
        with pytest.raises(BindingError):
            await binding.check_imported(database, backend, str(config_path))
        await asyncio.to_thread(cli.main, ["import", str(config_path)])
        await binding.check_imported(database, backend, str(config_path))  # imported: serve starts
    finally:
        await database.dispose()
