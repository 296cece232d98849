"""The ``registry`` command line: configuration errors are one line naming the key, with exit status 2."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import uvicorn

from registry.cli import _uvicorn_options, main
from registry.config import load_config
from registry.content import paths
from registry.db import migrate
from registry.db.engine import Database
from registry.db.urls import resolve
from storage_backends import create_backend


@pytest.fixture(autouse=True)
def no_test_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test runner's own REGISTRY_TEST_POSTGRES names no configuration key: serve would rightly warn about it."""
    monkeypatch.delenv("REGISTRY_TEST_POSTGRES", raising=False)


def _config(tmp_path: Path, extra: str) -> str:
    path = tmp_path / "config.yml"
    path.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path}/data\n{extra}")
    return str(path)


@pytest.mark.parametrize(
    ("section", "key", "message"),
    [
        ("auth:\n  htpasswd:\n    realm: r\n    path: /none/pw\n", "auth.htpasswd.path", "user add"),
        ("auth:\n  token:\n    realm: https://a.example/token\n    service: s\n", "auth.token.issuer", "non-empty"),
        ("auth:\n  token:\n    realm: r\n    service: s\n    issuer: i\n", "auth.token.rootcertbundle", "jwks"),
        ("auth:\n  silly:\n    realm: r\n", "auth.silly", "not implemented"),
        ("http:\n  tls:\n    certificate: /c.pem\n    key: /k.pem\n", "http.tls.certificate", "readable"),
        ("http:\n  tls:\n    letsencrypt:\n      cachefile: /x\n", "http.tls.letsencrypt", "not implemented"),
        ("http:\n  tls:\n    minimumtls: tls1.3\n", "http.tls.minimumtls", "tls1.2"),
    ],
)
def test_serve_refuses_security_settings_it_cannot_honour(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, key: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", _config(tmp_path, section)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and key in err and message in err, err


def test_serve_warns_once_about_the_environment_variables_that_name_no_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_HTTP_ADRES", "0.0.0.0:5000")  # misspelt
    monkeypatch.setenv("REGISTRY_PORT", "tcp://10.0.0.1:5000")  # what a Kubernetes service named registry sets
    monkeypatch.setenv("REGISTRY_CONFIGURATION_PATH", str(tmp_path / "other.yml"))  # names the file: not ignored
    config = _config(tmp_path, "redis:\n  addr: localhost:6379\n")
    # serve stops after its warnings: the storage holds distribution's repositories, never imported
    backend = create_backend("filesystem", {"rootdirectory": str(tmp_path / "data")})
    asyncio.run(backend.put_content(f"{paths.manifest_tags_dir('a/b')}/v1/current/link", b"sha256:" + b"0" * 64))
    with pytest.raises(SystemExit) as exited:
        main(["serve", config])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "REGISTRY_" in line]
    assert len(warned) == 1, err
    assert "name no configuration key" in warned[0] and warned[0].endswith(": REGISTRY_HTTP_ADRES, REGISTRY_PORT"), err
    assert "configuration section redis is not implemented yet" in err


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    main(["migrate", _config(tmp_path, "")])
    assert (tmp_path / "data" / "registry.db").stat().st_size > 0


def test_migrate_with_a_wrong_value_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["migrate", _config(tmp_path, "http:\n  addr: 1.2.3.4:99999\n")])
    assert exited.value.code == 2
    assert "http.addr" in capsys.readouterr().err


def test_serve_refuses_a_storage_driver_it_cannot_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yml"
    path.write_text("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /tmp/x\n    colour: blue\n")
    with pytest.raises(SystemExit) as exited:
        main(["serve", str(path)])
    assert exited.value.code == 2
    assert "storage.filesystem" in capsys.readouterr().err


async def test_replicas_migrating_at_once_all_succeed(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(migrate.upgrade(db) for db in databases))
        assert [await migrate.current_revision(db) for db in databases] == [migrate.HEAD_REVISION] * 4
    finally:
        for db in databases:
            await db.dispose()


def test_head_revision_is_the_newest_migration() -> None:
    # a restart skips Alembic when the database is at HEAD_REVISION: it must name the newest script
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(migrate.alembic_config(resolve("sqlite://")))
    assert scripts.get_current_head() == migrate.HEAD_REVISION


async def test_a_database_at_head_is_not_migrated_again(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from alembic import command

    database = Database(database_url)
    try:
        assert await migrate.current_revision(database) is None
        await migrate.upgrade(database)
        assert await migrate.current_revision(database) == migrate.HEAD_REVISION
        monkeypatch.setattr(command, "upgrade", lambda *args: pytest.fail("Alembic ran on a database at head"))
        await migrate.upgrade(database)
    finally:
        await database.dispose()


def test_idle_connections_outlive_the_clients_own_idle_timeout(tmp_path: Path) -> None:
    # docker (Go's HTTP client) keeps an idle connection 90 s; were the server to close it first, a push's next
    # POST could be sent on a connection being closed, and a POST is not retried
    options = _uvicorn_options(load_config(_config(tmp_path, ""), {}), 1)
    assert options["timeout_keep_alive"] > 90


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("proxy:\n  remoteurl: https://registry-1.docker.io\n  username: alice\n", "proxy.username"),
        ("validation:\n  manifests:\n    indexes:\n      platforms: 7\n", "validation.manifests.indexes.platforms"),
        ("notifications:\n  endpoints:\n    - name: hook\n", "notifications.endpoints"),
        ("retention:\n  rules:\n    - keep: {last: many}\n", "retention.rules"),
    ],
)
def test_serve_refuses_a_section_in_error_before_any_worker_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, section: str, key: str
) -> None:
    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("the workers were started: each would fail building its app, and be started again")

    monkeypatch.setattr(uvicorn, "run", started)
    with pytest.raises(SystemExit) as exited:
        main(["serve", _config(tmp_path, f"http:\n  workers: 2\n{section}")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and key in err, err
