"""Real clients against a registry that asks for credentials, in each auth mode:

    htpasswd   distribution's Basic auth (also run against distribution itself)
    token      our built-in token service: alice may push and pull e2e/*, bob may only pull

docker login then push/pull, skopeo --creds, podman login, ctr --user and oras-py with a login; what is denied
(no credentials, a wrong password, bob pushing) fails for each client.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .daemons import Containerd, DockerDaemon, Podman, Skopeo, docker_forget
from .images import AppImage
from .procs import run
from .server import REPO_ROOT, RegistryServer, needs_our_server, server_kind

pytestmark = pytest.mark.e2e

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw"}
IMPORTED = "docker.io/e2e-local/app:base"
DENIED = r"denied|unauthorized|authentication required|401|403|insufficient_scope|not authorized|Unauthorized"


def add_users(path: Path) -> None:
    """The htpasswd file made by `registry user add`, as an operator would."""
    for user, password in PASSWORDS.items():
        command = [sys.executable, "-m", "registry", "user", "add", user, "--password-stdin", "--file", str(path)]
        run(command, input=password + "\n", cwd=REPO_ROOT)


def auth_config(mode: str, root: Path) -> dict[str, Any]:
    htpasswd = root / "htpasswd"
    add_users(htpasswd)
    if mode == "htpasswd":
        return {"auth": {"htpasswd": {"realm": "e2e-realm", "path": str(htpasswd)}}}
    rules = [
        {"users": ["alice"], "repositories": ["e2e/*"], "actions": ["*"]},
        {"users": ["bob"], "repositories": ["e2e/*"], "actions": ["pull"]},
    ]
    server = {"key": str(root / "token-key.pem"), "htpasswd": str(htpasswd), "access": rules}
    return {"auth": {"token": {"service": "e2e-registry", "issuer": "e2e-token-service", "server": server}}}


MODES = ["htpasswd", pytest.param("token", marks=needs_our_server("the built-in token service"))]


@pytest.fixture(params=MODES)
def auth_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryServer]:
    root = tmp_path / "registry"
    root.mkdir()
    server = RegistryServer(root, server_kind(), extra_config=auth_config(request.param, root))
    server.mode = request.param  # type: ignore[attr-defined]
    try:
        server.start()
        yield server
    finally:
        server.stop()


def is_token(server: RegistryServer) -> bool:
    return bool(getattr(server, "mode", "") == "token")


def docker_login(dockerd: DockerDaemon, host: str, user: str, password: str, check: bool = True) -> Any:
    return dockerd.run("login", "--username", user, "--password-stdin", host, input=password, check=check)


def test_docker_login_push_pull(dockerd: DockerDaemon, auth_server: RegistryServer, app_image: AppImage) -> None:
    host = auth_server.host
    ref = f"{host}/e2e/app:v1"
    dockerd.run("tag", app_image.tag, ref)
    try:
        assert dockerd.run("push", ref, check=False).returncode != 0, "a push without credentials must fail"
        wrong = docker_login(dockerd, host, "alice", "wrong", check=False)
        assert wrong.returncode != 0 and "unauthorized" in (wrong.stderr + wrong.stdout).lower(), wrong
        docker_login(dockerd, host, "alice", PASSWORDS["alice"])
        dockerd.run("push", ref)
        docker_forget(dockerd, ref)
        dockerd.run("logout", host)
        pulled = dockerd.run("pull", ref, check=False)
        assert pulled.returncode != 0, "a pull without credentials must fail"
        assert not dockerd.has_image(ref)

        docker_login(dockerd, host, "bob", PASSWORDS["bob"])
        dockerd.run("pull", ref)
        assert dockerd.inspect(ref, "{{.Id}}") == app_image.image_id
        if is_token(auth_server):
            other = f"{host}/e2e/bob:v1"
            dockerd.run("tag", app_image.tag, other)
            pushed = dockerd.run("push", other, check=False)
            assert pushed.returncode != 0, f"bob may only pull:\n{pushed.stdout}\n{pushed.stderr}"
            dockerd.run("rmi", other)
    finally:
        dockerd.run("logout", host, check=False)
        dockerd.run("rmi", "--force", ref, check=False)


def test_skopeo_creds(skopeo: Skopeo, auth_server: RegistryServer, app_image: AppImage) -> None:
    repo = f"docker://{auth_server.host}/e2e/sko"
    source = f"docker-daemon:{app_image.tag}"
    daemon = f"--src-daemon-host={skopeo.docker_host}"
    alice, bob = (f"{user}:{password}" for user, password in PASSWORDS.items())
    skopeo.run("copy", daemon, "--dest-tls-verify=false", "--dest-creds", alice, source, f"{repo}:v1")
    info = skopeo.inspect(f"{repo}:v1", "--creds", bob)
    assert len(info["Layers"]) == 3, info
    for extra in ((), ("--creds", "alice:wrong"), ("--no-creds",)):
        refused = skopeo.run("inspect", "--tls-verify=false", *extra, f"{repo}:v1", check=False)
        assert refused.returncode != 0, f"skopeo inspect {extra} must be refused"
    if is_token(auth_server):
        pushed = skopeo.run(
            "copy", daemon, "--dest-tls-verify=false", "--dest-creds", bob, source, f"{repo}:v2", check=False
        )
        assert pushed.returncode != 0, "bob may only pull"


def test_podman_login(podman: Podman, auth_server: RegistryServer, app_image: AppImage, app_archive: Path) -> None:
    host = auth_server.host
    image_id = app_image.image_id.removeprefix("sha256:")
    podman.run("load", "--input", app_archive)
    ref = f"{host}/e2e/pod:v1"
    podman.run("tag", image_id, ref)
    assert podman.run("push", "--tls-verify=false", ref, check=False).returncode != 0
    wrong = podman.run("login", "--tls-verify=false", "-u", "alice", "--password-stdin", host, input="x", check=False)
    assert wrong.returncode != 0
    podman.run("login", "--tls-verify=false", "-u", "alice", "--password-stdin", host, input=PASSWORDS["alice"])
    podman.run("push", "--tls-verify=false", ref)
    podman.run("rmi", "--all", "--force")
    podman.run("logout", host)
    assert podman.run("pull", "--tls-verify=false", ref, check=False).returncode != 0

    podman.run("login", "--tls-verify=false", "-u", "bob", "--password-stdin", host, input=PASSWORDS["bob"])
    podman.run("pull", "--tls-verify=false", ref)
    assert podman.inspect(ref, "{{.Id}}") == image_id
    if is_token(auth_server):
        other = f"{host}/e2e/bob:v1"
        podman.run("tag", image_id, other)
        assert podman.run("push", "--tls-verify=false", other, check=False).returncode != 0, "bob may only pull"


def test_ctr_user(containerd: Containerd, auth_server: RegistryServer, app_image: AppImage, app_archive: Path) -> None:
    containerd.ctr("images", "import", app_archive)
    ref = f"{auth_server.host}/e2e/ctr:v1"
    alice, bob = (f"{user}:{password}" for user, password in PASSWORDS.items())
    assert containerd.ctr("images", "push", "--plain-http", ref, IMPORTED, check=False).returncode != 0
    wrong = containerd.ctr("images", "push", "--plain-http", "--user", "alice:wrong", ref, IMPORTED, check=False)
    assert wrong.returncode != 0
    containerd.ctr("images", "push", "--plain-http", "--user", alice, ref, IMPORTED)
    assert containerd.ctr("images", "pull", "--plain-http", ref, check=False).returncode != 0
    containerd.ctr("images", "pull", "--plain-http", "--user", bob, ref)
    assert ref in containerd.images()
    containerd.ctr("images", "rm", "--sync", ref)
    if is_token(auth_server):
        other = f"{auth_server.host}/e2e/bob:v1"
        pushed = containerd.ctr("images", "push", "--plain-http", "--user", bob, other, IMPORTED, check=False)
        assert pushed.returncode != 0, "bob may only pull"


def oras(
    action: str, server: RegistryServer, ref: str, user: str, password: str, path: Path, check: bool = True
) -> Any:
    backend = "token" if is_token(server) else "basic"
    script = Path(__file__).with_name("oras_run.py")
    config = path.parent / "oras-config.json"
    argv = [sys.executable, script, action, server.host, ref, user, password, backend, path, config]
    return run(argv, check=check)


def test_oras_login_push_pull(auth_server: RegistryServer, tmp_path: Path) -> None:
    artifact = tmp_path / "push" / "notes.txt"
    artifact.parent.mkdir()
    artifact.write_text("an artifact pushed with oras-py\n")
    ref = f"{auth_server.host}/e2e/notes:v1"
    oras("push", auth_server, ref, "alice", PASSWORDS["alice"], artifact)
    out = tmp_path / "pulled"
    oras("pull", auth_server, ref, "bob", PASSWORDS["bob"], out)
    assert (out / "notes.txt").read_text() == artifact.read_text()
    assert oras("pull", auth_server, ref, "bob", "wrong", tmp_path / "x", check=False).returncode != 0
    if is_token(auth_server):
        other = f"{auth_server.host}/e2e/bob:v1"
        assert oras("push", auth_server, other, "bob", PASSWORDS["bob"], artifact, check=False).returncode != 0
