"""HTTPS with `http.tls.certificate` and `key`, and mutual TLS with `clientcas`, with certificates made here.

dockerd treats every 127.0.0.0/8 registry as insecure: there it skips verification and never reads certs.d. So the
docker tests run the registry on a non-loopback IPv4 address of this host (dockerd, in the host's network namespace,
reaches it through the local routing table) and put the test's CA, and for mutual TLS a client certificate, in
`/etc/docker/certs.d/IP:PORT/` (the port is this test's own; the directory is removed afterwards). Each proves the
failure too: a different CA there, or no client certificate, and push and pull are refused. skopeo with `--cert-dir`
and `--tls-verify=true` checks the same on loopback, and httpx checks a client without a certificate is refused.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .certs import Authority, client_context
from .daemons import DockerDaemon, Skopeo, docker_forget, docker_push
from .images import AppImage
from .procs import missing
from .server import RegistryServer, server_kind

pytestmark = pytest.mark.e2e

DOCKER_CERTS = Path("/etc/docker/certs.d")
UNKNOWN_AUTHORITY = ("x509: certificate signed by unknown authority",)
# The server ends the handshake of a client without a certificate it trusts. dockerd reports the server's TLS alert
# (distribution sends one), or, when the server just closes (uvicorn does), EOF, a reset or Go's "server closed idle
# connection" (an EOF before any byte of the answer), as the close races with the request dockerd already sent
# (TLS 1.3 clients send before the server has checked their certificate).
CLIENT_CERT_REFUSED = (
    "remote error: tls:",
    '/v2/": EOF',
    "connection reset by peer",
    "http: server closed idle connection",
)


def host_address() -> str:
    """The IPv4 address this host sends from on its default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("203.0.113.1", 9))  # TEST-NET-3: only the route lookup matters
        except OSError as exc:
            missing(f"no IPv4 route off this host ({exc}): dockerd verifies TLS only for non-loopback registries")
        address: str = sock.getsockname()[0]
    if ipaddress.ip_address(address).is_loopback:
        missing(f"this host's only IPv4 address is {address}: dockerd verifies TLS only for non-loopback registries")
    return address


def cert_dir(target: Path, ca: Path, client_cert: tuple[Path, Path] | None = None) -> Path:
    """Replace `target` with a certs.d-style directory: `ca.crt`, and `client.cert` with `client.key` if given."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copy(ca, target / "ca.crt")
    if client_cert is not None:
        shutil.copy(client_cert[0], target / "client.cert")
        shutil.copy(client_cert[1], target / "client.key")
    return target


class TlsSetup:
    def __init__(self, root: Path, mutual: bool, address: str = "127.0.0.1") -> None:
        root.mkdir(parents=True)
        self.dir = root / "certs"
        self.dir.mkdir()
        ca = Authority("e2e server CA")
        self.ca = ca.write(self.dir / "ca.crt")
        self.server_cert = ca.issue(self.dir, "server", server=True, address=address)
        tls: dict[str, object] = {"certificate": str(self.server_cert[0]), "key": str(self.server_cert[1])}
        self.client_cert: tuple[Path, Path] | None = None
        if mutual:
            client_ca = Authority("e2e client CA")
            tls["clientcas"] = [str(client_ca.write(self.dir / "client-ca.pem"))]
            self.client_cert = client_ca.issue(self.dir, "client", server=False)
        context = client_context(self.ca, self.client_cert)
        self.server = RegistryServer(
            root / "registry", server_kind(), extra_config={"http": {"tls": tls}}, tls=context, address=address
        )

    def client_files(self, target: Path) -> Path:
        """A certs.d-style directory that trusts this server and, for mutual TLS, holds the client certificate."""
        return cert_dir(target, self.ca, self.client_cert)


def serve(setup: TlsSetup, *leftovers: Path) -> Iterator[TlsSetup]:
    try:
        setup.server.start()
        yield setup
    finally:
        for path in leftovers:
            shutil.rmtree(path, ignore_errors=True)
        setup.server.stop()


@pytest.fixture(params=["tls", "mutual-tls"])
def tls_setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TlsSetup]:
    """The registry over https on 127.0.0.1."""
    yield from serve(TlsSetup(tmp_path / "tls", mutual=request.param == "mutual-tls"))


@pytest.fixture
def docker_tls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TlsSetup]:
    """The registry over https on this host's non-loopback address; its certs.d directory is removed afterwards."""
    setup = TlsSetup(tmp_path / "tls", mutual=request.param == "mutual-tls", address=host_address())
    yield from serve(setup, DOCKER_CERTS / setup.server.host)


def refused(result: subprocess.CompletedProcess[str], host: str, reasons: tuple[str, ...]) -> None:
    """docker failed at its first request, `GET https://HOST/v2/`, for one of `reasons`."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"docker succeeded where TLS should have refused it:\n{output}"
    assert f'Get "https://{host}/v2/"' in output, f"docker did not fail at its first request:\n{output}"
    assert any(reason in output for reason in reasons), f"expected one of {reasons} in docker's output:\n{output}"


def tags(server: RegistryServer, repo: str) -> list[str] | None:
    """The repository's tags as the registry lists them over https (None: no such repository)."""
    with server.client() as client:
        response = client.http.get(f"/v2/{repo}/tags/list")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        found: list[str] = response.json()["tags"]
        return found


def push_pull(docker: DockerDaemon, ref: str, app_image: AppImage) -> None:
    """`docker push` then, with the image gone locally, `docker pull`; the pulled image is the one pushed."""
    docker_push(docker, ref)
    docker_forget(docker, ref)
    docker.run("pull", ref)
    assert docker.inspect(ref, "{{.Id}}") == app_image.image_id
    docker_forget(docker, ref)


@pytest.mark.parametrize("docker_tls", ["tls"], indirect=True)
def test_docker_verifies_the_registry_certificate_against_certs_d(
    dockerd: DockerDaemon, docker_tls: TlsSetup, app_image: AppImage, tmp_path: Path
) -> None:
    host = docker_tls.server.host
    certs = DOCKER_CERTS / host
    other_ca = Authority("some other CA").write(tmp_path / "other-ca.crt")
    ref = f"{host}/e2e/tls:v1"
    dockerd.run("tag", app_image.tag, ref)
    try:
        cert_dir(certs, other_ca)
        refused(dockerd.run("push", ref, check=False), host, UNKNOWN_AUTHORITY)
        assert tags(docker_tls.server, "e2e/tls") is None
        docker_tls.client_files(certs)
        push_pull(dockerd, ref, app_image)
        cert_dir(certs, other_ca)
        refused(dockerd.run("pull", ref, check=False), host, UNKNOWN_AUTHORITY)
        assert not dockerd.has_image(ref)
        assert tags(docker_tls.server, "e2e/tls") == ["v1"]
    finally:
        dockerd.run("rmi", "--force", ref, check=False)


@pytest.mark.parametrize("docker_tls", ["mutual-tls"], indirect=True)
def test_docker_presents_the_client_certificate_from_certs_d(
    dockerd: DockerDaemon, docker_tls: TlsSetup, app_image: AppImage, tmp_path: Path
) -> None:
    host = docker_tls.server.host
    certs = DOCKER_CERTS / host
    stranger = Authority("some other client CA").issue(tmp_path, "stranger", server=False)
    ref = f"{host}/e2e/mtls:v1"
    dockerd.run("tag", app_image.tag, ref)
    try:
        cert_dir(certs, docker_tls.ca)
        refused(dockerd.run("push", ref, check=False), host, CLIENT_CERT_REFUSED)
        cert_dir(certs, docker_tls.ca, stranger)
        refused(dockerd.run("push", ref, check=False), host, CLIENT_CERT_REFUSED)
        assert tags(docker_tls.server, "e2e/mtls") is None
        docker_tls.client_files(certs)
        push_pull(dockerd, ref, app_image)
        cert_dir(certs, docker_tls.ca)
        refused(dockerd.run("pull", ref, check=False), host, CLIENT_CERT_REFUSED)
        assert not dockerd.has_image(ref)
        assert tags(docker_tls.server, "e2e/mtls") == ["v1"]  # still up: the refusal was the handshake's
    finally:
        dockerd.run("rmi", "--force", ref, check=False)


def test_skopeo_verifies_the_certificate_against_the_ca(
    skopeo: Skopeo, tls_setup: TlsSetup, app_image: AppImage, tmp_path: Path
) -> None:
    repo = f"docker://{tls_setup.server.host}/e2e/sko-tls"
    certs = tls_setup.client_files(tmp_path / "skopeo-certs")
    daemon = f"--src-daemon-host={skopeo.docker_host}"
    skopeo.run(
        "copy",
        daemon,
        "--dest-tls-verify=true",
        f"--dest-cert-dir={certs}",
        f"docker-daemon:{app_image.tag}",
        f"{repo}:v1",
    )
    info = skopeo.inspect(f"{repo}:v1", f"--cert-dir={certs}")  # inspect() passes --tls-verify=false first
    assert len(info["Layers"]) == 3
    verified = skopeo.run("inspect", "--tls-verify=true", f"--cert-dir={certs}", f"{repo}:v1")
    assert verified.returncode == 0
    other = tmp_path / "other-ca"
    other.mkdir()
    Authority("some other CA").write(other / "ca.crt")
    for name in ("client.cert", "client.key"):
        if (certs / name).exists():
            shutil.copy(certs / name, other / name)
    rejected = skopeo.run("inspect", "--tls-verify=true", f"--cert-dir={other}", f"{repo}:v1", check=False)
    assert rejected.returncode != 0 and "certificate" in rejected.stderr, rejected.stderr


@pytest.mark.parametrize("tls_setup", ["mutual-tls"], indirect=True)
def test_mutual_tls_refuses_a_client_without_a_certificate(tls_setup: TlsSetup) -> None:
    assert tls_setup.client_cert is not None
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{tls_setup.server.url}/v2/", verify=client_context(tls_setup.ca), trust_env=False, timeout=10)
    with httpx.Client(verify=client_context(tls_setup.ca, tls_setup.client_cert), trust_env=False) as client:
        assert client.get(f"{tls_setup.server.url}/v2/").status_code == 200
