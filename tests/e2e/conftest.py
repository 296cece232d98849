"""Fixtures for the end-to-end tier: a private dockerd, the registry under test, and the client tools.

`E2E_SERVER=distribution` runs the same tests against CNCF distribution (`docker-registry`) instead of our server.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from .daemons import Containerd, DockerDaemon, Podman, Skopeo
from .images import AppImage, build_app_image, build_busybox_rootfs, is_static_elf
from .procs import missing, remove_tree, require, require_root, short_tmpdir, tail
from .runtime_cli import RuntimeCli
from .server import RegistryServer, server_kind


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, attach the logs of the daemons the test used (registry server, dockerd, containerd)."""
    report: pytest.TestReport = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            log_path = getattr(value, "log_path", None)
            if isinstance(log_path, Path):
                title = getattr(value, "log_title", type(value).__name__)
                report.sections.append((f"{title} log ({log_path})", tail(log_path, 60)))
    return report


@pytest.fixture(scope="session")
def e2e_tmp() -> Iterator[Path]:
    """One short private directory for the whole session (socket paths must stay < 100 characters)."""
    base = short_tmpdir()
    yield base
    remove_tree(base)


@pytest.fixture(scope="session")
def dockerd(e2e_tmp: Path) -> Iterator[DockerDaemon]:
    require_root("dockerd")
    base = e2e_tmp / "docker"
    base.mkdir()
    daemon = DockerDaemon(base)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def registry_server(tmp_path: Path) -> Iterator[RegistryServer]:
    """The registry under test, fresh for each test (it starts in well under a second)."""
    server = RegistryServer(tmp_path / "registry", server_kind())
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def busybox_rootfs(e2e_tmp: Path) -> Path:
    busybox = Path(require("busybox")).resolve()
    if not is_static_elf(busybox):
        missing(f"{busybox} is not statically linked (apt-get install busybox-static)")
    return build_busybox_rootfs(e2e_tmp / "rootfs", busybox)


@pytest.fixture(scope="session")
def app_image(dockerd: DockerDaemon, busybox_rootfs: Path, e2e_tmp: Path) -> AppImage:
    """One 3-layer image shared by the skopeo, podman and containerd tests (`e2e-local/app:base`)."""
    return build_app_image(dockerd, busybox_rootfs, e2e_tmp, "e2e-local/app:base")


@pytest.fixture(scope="session")
def app_archive(dockerd: DockerDaemon, app_image: AppImage, e2e_tmp: Path) -> Path:
    """`docker save` of `app_image`: a docker-archive for podman and ctr to import."""
    archive = e2e_tmp / "app.tar"
    dockerd.run("save", "--output", archive, app_image.tag)
    return archive


@pytest.fixture
def skopeo(dockerd: DockerDaemon) -> Iterator[Skopeo]:
    require("skopeo")
    base = short_tmpdir("e2e-skopeo-")
    try:
        yield Skopeo(base, dockerd.host)
    finally:
        remove_tree(base)


@pytest.fixture
def podman() -> Iterator[Podman]:
    require_root("podman with a private --root")
    require("podman")
    base = short_tmpdir("e2e-podman-")
    client = Podman(base)
    try:
        yield client
    finally:
        client.cleanup()


@pytest.fixture(scope="session")
def containerd(e2e_tmp: Path) -> Iterator[Containerd]:
    require_root("containerd")
    require("runc")
    base = e2e_tmp / "containerd"
    base.mkdir()
    daemon = Containerd(base)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def rt() -> Iterator[RuntimeCli]:
    """The companion runtime with a store of its own (`runtime run` needs root and runc)."""
    require_root("runtime run (overlay mounts, runc)")
    require("runc")
    cli = RuntimeCli(short_tmpdir("e2e-rt-"))
    try:
        yield cli
    finally:
        cli.cleanup()
