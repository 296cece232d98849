"""Taking over from distribution in place: CNCF distribution 2.8.2 (`docker-registry`) takes docker pushes (two
images sharing layers, several tags, two repositories), a hand-pushed multi-platform OCI index and an oras artifact
(oras-py, `--subject`) whose subject is one of them; it is stopped, `registry import` runs on the same config.yml,
and our server serves what distribution served: the same catalog and tag lists, docker pull by tag and by digest,
skopeo copies of every blob, the subject's referrers. Then an import killed with SIGKILL halfway through converges
when run again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.s3server import MotoServer

from .client import expect
from .daemons import DockerDaemon, Skopeo, docker_push
from .images import AppImage, Blob, canonical_json, make_oci_image, tar_files
from .procs import base_env, require, run
from .server import RegistryServer, needs_our_server
from .test_index import make_index, native_and_foreign_arch, platform_image

pytestmark = [pytest.mark.e2e, needs_our_server("registry import is ours")]

SIGNATURE = "application/vnd.example.signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def registry_import(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "registry", "import", str(config), *args], env=base_env())


@pytest.fixture
def distribution(tmp_path: Path) -> Iterator[RegistryServer]:
    require("docker-registry")
    server = RegistryServer(tmp_path / "registry", "distribution")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def listing(server: RegistryServer) -> dict[str, list[str]]:
    """Every repository distribution (or we) list, with its tags."""
    with server.client() as client:
        names = [name for page in client.paginate("/v2/_catalog?n=100", "repositories") for name in page]
        return {name: sorted(expect(client.http.get(f"/v2/{name}/tags/list"), 200).json()["tags"]) for name in names}


def push_with_docker(dockerd: DockerDaemon, server: RegistryServer, image: AppImage, tmp_path: Path) -> dict[str, str]:
    """app:1 and app:latest, app:extended (built on it: shares its three layers), and tools/app:1; the digests."""
    refs = {name: f"{server.host}/e2e/{name}" for name in ("app:1", "app:latest", "app:extended", "tools/app:1")}
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "extra.txt").write_text("extended\n")
    (context / "Dockerfile").write_text(f"FROM {image.tag}\nCOPY extra.txt /etc/extra.txt\n")
    dockerd.run("build", "--tag", refs["app:extended"], context)
    for name in ("app:1", "app:latest", "tools/app:1"):
        dockerd.run("tag", image.tag, refs[name])
    return {name: docker_push(dockerd, ref)[0] for name, ref in refs.items()}


def push_index_and_referrer(server: RegistryServer, busybox_rootfs: Path, tmp_path: Path) -> tuple[Blob, str]:
    """The index by hand; then oras (oras-py, as a user's script runs it) pushes a signature whose subject is the
    index's first manifest, tagged ``signature``. The index and the signature's digest."""
    native_arch, foreign_arch = native_and_foreign_arch()
    native, foreign = platform_image(native_arch, busybox_rootfs), platform_image(foreign_arch, None)
    index = make_index([native, foreign])
    with server.client() as client:
        client.push_image("e2e/multi", native)
        client.push_image("e2e/multi", foreign)
        client.put_manifest("e2e/multi", "v1", index)
        signature = tmp_path / "oras" / "signature.txt"
        signature.parent.mkdir()
        signature.write_text("signed by e2e\n")
        subject = f"{native.manifest.media_type}@{native.manifest.digest}@{len(native.manifest.data)}"
        oras = [sys.executable, Path(__file__).with_name("oras_run.py"), "push", server.host]
        target = f"{server.host}/e2e/multi:signature"
        run([*oras, target, "-", "-", "basic", signature, tmp_path / "oras" / "config.json", subject, SIGNATURE])
        head = client.http.head("/v2/e2e/multi/manifests/signature", headers={"Accept": OCI_MANIFEST})
        artifact = expect(head, 200).headers["docker-content-digest"]
    return index, artifact


def test_distribution_storage_imported_and_served(
    dockerd: DockerDaemon,
    distribution: RegistryServer,
    app_image: AppImage,
    busybox_rootfs: Path,
    skopeo: Skopeo,
    tmp_path: Path,
) -> None:
    digests = push_with_docker(dockerd, distribution, app_image, tmp_path)
    index, artifact = push_index_and_referrer(distribution, busybox_rootfs, tmp_path)
    listed = listing(distribution)
    assert listed["e2e/app"] == ["1", "extended", "latest"]
    distribution.stop()

    ours = RegistryServer(distribution.root, "ours")  # the same data directory and database path, a new port
    assert ours.config is not None
    out = registry_import(ours.config).stdout
    assert "imported: 3 repositories, 7 manifests, 6 tags" in out, out
    assert "skipped: nothing" in out, out
    ours.start()
    try:
        assert listing(ours) == listed
        with ours.client() as client:
            referrers = expect(client.http.get(f"/v2/e2e/multi/referrers/{index_child(index)}"), 200).json()
            assert [(m["digest"], m.get("artifactType")) for m in referrers["manifests"]] == [(artifact, SIGNATURE)]
        for name in ("app:1", "app:extended", "tools/app:1"):
            repo = name.split(":")[0]
            pulled = dockerd.run("pull", f"{ours.host}/e2e/{repo}@{digests[name]}").stdout
            assert digests[name] in pulled, pulled
            skopeo.run(
                "copy",
                "--src-tls-verify=false",
                f"docker://{ours.host}/e2e/{name}",
                f"dir:{tmp_path / name.replace('/', '_')}",
            )
        dockerd.run("pull", f"{ours.host}/e2e/app:latest")
        printed = dockerd.run(
            "run", "--rm", "--network", "none", f"{ours.host}/e2e/app:extended", "cat", "/etc/extra.txt"
        )
        assert printed.stdout == "extended\n"
        inspected = skopeo.inspect(f"docker://{ours.host}/e2e/multi:v1", "--raw")
        assert canonical_json(inspected) == index.data
    finally:
        ours.stop()


def index_child(index: Blob) -> str:
    """The digest of the first manifest an index names (the artifact's subject)."""
    import json

    return str(json.loads(index.data)["manifests"][0]["digest"])


MANY = 150


def push_many(server: RegistryServer) -> None:
    """MANY small tagged images in one repository, all sharing one layer."""
    layer = tar_files({"etc/shared": b"shared\n"})
    with server.client() as client:
        for number in range(MANY):
            image = make_oci_image([layer], cmd=[f"/bin/{number}"])
            client.push_image("e2e/many", image, f"t{number}")


def imported_manifests(database: Path) -> int:
    try:
        with sqlite3.connect(database, timeout=0.1) as connection:
            return int(connection.execute("SELECT count(*) FROM manifests").fetchone()[0])
    except sqlite3.OperationalError:  # not made yet, or locked for a moment
        return 0


def test_an_import_killed_halfway_converges_when_run_again(distribution: RegistryServer) -> None:
    push_many(distribution)
    listed = listing(distribution)
    distribution.stop()
    ours = RegistryServer(distribution.root, "ours")
    assert ours.config is not None
    database = distribution.root / "data" / "registry.db"
    command = [sys.executable, "-m", "registry", "import", str(ours.config), "--workers", "1", "--batch", "5"]
    process = subprocess.Popen(command, env=base_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while imported_manifests(database) == 0 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the import ended before it could be killed"
    assert 0 < imported_manifests(database) < MANY

    out = registry_import(ours.config).stdout
    assert f"imported: 1 repositories, {MANY} manifests, {MANY} tags" in out, out
    ours.start()
    try:
        assert listing(ours) == listed
    finally:
        ours.stop()


def on_s3(server: RegistryServer, params: dict[str, object]) -> RegistryServer:
    """The server with its config.yml's storage in S3 (moto), blobs streamed through it."""
    server.env.pop("AWS_CA_BUNDLE", None)  # docker-registry's Go SDK refuses to start with one over plain HTTP
    assert server.config is not None
    config = yaml.safe_load(server.config.read_text())
    config["storage"] = {"s3": params, "delete": {"enabled": True}, "redirect": {"disable": True}}
    server.config.write_text(yaml.safe_dump(config, sort_keys=False))
    return server


def test_distribution_on_s3_imported_and_served(
    dockerd: DockerDaemon, app_image: AppImage, moto_s3: MotoServer, tmp_path: Path
) -> None:
    require("docker-registry")
    params = moto_s3.driver_params(moto_s3.create_bucket(), rootdirectory="/registry")
    distribution = on_s3(RegistryServer(tmp_path / "registry", "distribution"), params)
    distribution.start()
    try:
        refs = [f"{distribution.host}/e2e/{name}" for name in ("app:1", "app:2", "other/app:1")]
        for ref in refs:
            dockerd.run("tag", app_image.tag, ref)
        digest = [docker_push(dockerd, ref)[0] for ref in refs][0]
        listed = listing(distribution)
    finally:
        distribution.stop()

    ours = on_s3(RegistryServer(distribution.root, "ours"), params)
    assert ours.config is not None
    out = registry_import(ours.config).stdout
    assert "imported: 2 repositories, 2 manifests, 3 tags" in out and "skipped: nothing" in out, out
    ours.start()
    try:
        assert listing(ours) == listed
        pulled = dockerd.run("pull", f"{ours.host}/e2e/other/app@{digest}").stdout
        assert digest in pulled, pulled
    finally:
        ours.stop()
