"""HTTPS with `http.tls.certificate` and `key`, and mutual TLS with `clientcas`, with certificates made here.

docker is given the test CA in `/etc/docker/certs.d/127.0.0.1:PORT/ca.crt` (the port is this test's own; the
directory is removed afterwards) and pushes and pulls over https. dockerd always treats 127.0.0.0/8 as an insecure
registry: there it skips verification and never reads certs.d, so it cannot present a client certificate (mutual
TLS) on loopback. skopeo with `--cert-dir` and `--tls-verify=true` is the client that proves the certificate
verifies against the CA (and fails against another), with and without a client certificate.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .certs import Authority, client_context
from .daemons import DockerDaemon, Skopeo, docker_forget
from .images import AppImage
from .server import RegistryServer, server_kind

pytestmark = pytest.mark.e2e

DOCKER_CERTS = Path("/etc/docker/certs.d")


class TlsSetup:
    def __init__(self, root: Path, mutual: bool) -> None:
        root.mkdir(parents=True)
        self.dir = root / "certs"
        self.dir.mkdir()
        ca = Authority("e2e server CA")
        self.ca = ca.write(self.dir / "ca.crt")
        self.server_cert = ca.issue(self.dir, "server", server=True)
        tls = {"certificate": str(self.server_cert[0]), "key": str(self.server_cert[1])}
        self.client_cert: tuple[Path, Path] | None = None
        if mutual:
            client_ca = Authority("e2e client CA")
            tls["clientcas"] = [str(client_ca.write(self.dir / "client-ca.pem"))]  # type: ignore[assignment]
            self.client_cert = client_ca.issue(self.dir, "client", server=False)
        context = client_context(self.ca, self.client_cert)
        self.server = RegistryServer(root / "registry", server_kind(), extra_config={"http": {"tls": tls}}, tls=context)

    def client_files(self, target: Path) -> Path:
        """A certs.d-style directory: `ca.crt`, and `client.cert` with `client.key` for mutual TLS."""
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.ca, target / "ca.crt")
        if self.client_cert is not None:
            shutil.copy(self.client_cert[0], target / "client.cert")
            shutil.copy(self.client_cert[1], target / "client.key")
        return target


@pytest.fixture(params=["tls", "mutual-tls"])
def tls_setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TlsSetup]:
    setup = TlsSetup(tmp_path / "tls", mutual=request.param == "mutual-tls")
    try:
        setup.server.start()
        yield setup
    finally:
        setup.server.stop()


@pytest.mark.parametrize("tls_setup", ["tls"], indirect=True)
def test_docker_push_pull_over_https(dockerd: DockerDaemon, tls_setup: TlsSetup, app_image: AppImage) -> None:
    ref = f"{tls_setup.server.host}/e2e/tls:v1"
    docker_dir = DOCKER_CERTS / tls_setup.server.host
    dockerd.run("tag", app_image.tag, ref)
    try:
        tls_setup.client_files(docker_dir)
        dockerd.run("push", ref)
        docker_forget(dockerd, ref)
        dockerd.run("pull", ref)
        assert dockerd.inspect(ref, "{{.Id}}") == app_image.image_id
    finally:
        shutil.rmtree(docker_dir, ignore_errors=True)
        dockerd.run("rmi", "--force", ref, check=False)
    with tls_setup.server.client() as client:
        assert client.http.get("/v2/e2e/tls/tags/list").json()["tags"] == ["v1"]


def test_skopeo_verifies_the_certificate_against_the_ca(
    skopeo: Skopeo, tls_setup: TlsSetup, app_image: AppImage, tmp_path: Path
) -> None:
    repo = f"docker://{tls_setup.server.host}/e2e/sko-tls"
    cert_dir = tls_setup.client_files(tmp_path / "skopeo-certs")
    daemon = f"--src-daemon-host={skopeo.docker_host}"
    skopeo.run(
        "copy",
        daemon,
        "--dest-tls-verify=true",
        f"--dest-cert-dir={cert_dir}",
        f"docker-daemon:{app_image.tag}",
        f"{repo}:v1",
    )
    info = skopeo.inspect(f"{repo}:v1", f"--cert-dir={cert_dir}")  # inspect() passes --tls-verify=false first
    assert len(info["Layers"]) == 3
    verified = skopeo.run("inspect", "--tls-verify=true", f"--cert-dir={cert_dir}", f"{repo}:v1")
    assert verified.returncode == 0
    other = tmp_path / "other-ca"
    other.mkdir()
    Authority("some other CA").write(other / "ca.crt")
    for name in ("client.cert", "client.key"):
        if (cert_dir / name).exists():
            shutil.copy(cert_dir / name, other / name)
    refused = skopeo.run("inspect", "--tls-verify=true", f"--cert-dir={other}", f"{repo}:v1", check=False)
    assert refused.returncode != 0 and "certificate" in refused.stderr, refused.stderr


@pytest.mark.parametrize("tls_setup", ["mutual-tls"], indirect=True)
def test_mutual_tls_refuses_a_client_without_a_certificate(tls_setup: TlsSetup) -> None:
    assert tls_setup.client_cert is not None
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{tls_setup.server.url}/v2/", verify=client_context(tls_setup.ca), trust_env=False, timeout=10)
    with httpx.Client(verify=client_context(tls_setup.ca, tls_setup.client_cert), trust_env=False) as client:
        assert client.get(f"{tls_setup.server.url}/v2/").status_code == 200
