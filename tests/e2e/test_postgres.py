"""The registry on PostgreSQL metadata, as when one machine is not enough: two workers, docker push, pull and run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import postgres_database
from .daemons import DockerDaemon, docker_forget
from .images import AppImage, build_app_image
from .server import RegistryServer, needs_our_server, server_kind
from .test_docker import assert_runs, pull_fresh, push_as

pytestmark = [pytest.mark.e2e, needs_our_server("database.url (PostgreSQL metadata)")]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the server scripts/test.sh starts (REGISTRY_TEST_POSTGRES), dropped afterwards."""
    with postgres_database() as url:
        yield url


def test_docker_push_pull_run_with_postgres_metadata_and_two_workers(
    dockerd: DockerDaemon, busybox_rootfs: Path, tmp_path: Path, postgres_url: str
) -> None:
    extra = {"database": {"url": postgres_url}}
    server = RegistryServer(tmp_path / "registry", server_kind(), extra_config=extra, args=["--workers", "2"])
    image: AppImage = build_app_image(dockerd, busybox_rootfs, tmp_path, "e2e-local/pg:v1")
    try:
        server.start()
        ref = f"{server.host}/e2e/pg:v1"
        digest = push_as(dockerd, image, ref)
        docker_forget(dockerd, ref, image.tag)
        server.restart()
        pull_fresh(dockerd, ref)
        assert dockerd.inspect(ref, "{{index .RepoDigests 0}}") == f"{server.host}/e2e/pg@{digest}"
        assert_runs(dockerd, ref, image)
        assert not (tmp_path / "registry" / "data" / "registry.db").exists(), "metadata went to SQLite"
    finally:
        server.stop()
        dockerd.run("rmi", "--force", image.image_id, check=False)
