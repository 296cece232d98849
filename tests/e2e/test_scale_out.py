"""Scale out: three `registry serve` replicas on one PostgreSQL database and one S3 bucket (moto), behind nginx.

nginx balances every request on its own and sends an upload's POST, PATCH and PUT to three different replicas
(`nginx.py`), so every blob docker pushes is started, written and finished by three processes. The replicas share
nothing but the database, the bucket and, with the token service, its key file.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.s3server import MotoServer

from .certs import Authority, client_context
from .cluster import Cluster, Replica, cluster, postgres_database
from .daemons import DockerDaemon, docker_forget
from .images import AppImage, build_app_image
from .nginx import Entry
from .procs import wait_until
from .runtime_cli import RuntimeCli
from .server import needs_our_server
from .test_auth import PASSWORDS, add_users, docker_login
from .test_docker import assert_runs, pull_fresh, push_as

pytestmark = [pytest.mark.e2e, needs_our_server("replicas on PostgreSQL metadata")]

BIG_BLOB = 24 * 1024 * 1024  # more than S3's 10 MiB part: the layer's PATCH writes parts while docker sends it
UPLOAD_PART = r"[?&]partNumber="
SESSION = re.compile(r"/blobs/uploads/([^/?]+)")


@pytest.fixture
def ha_database() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def new_image(dockerd: DockerDaemon, busybox_rootfs: Path, tmp_path: Path, blob_size: int = 300 * 1024) -> AppImage:
    return build_app_image(dockerd, busybox_rootfs, tmp_path, f"e2e-local/ha-{tmp_path.name.lower()}:v1", blob_size)


@pytest.fixture
def image(dockerd: DockerDaemon, busybox_rootfs: Path, tmp_path: Path) -> Iterator[AppImage]:
    built = new_image(dockerd, busybox_rootfs, tmp_path)
    yield built
    dockerd.run("rmi", "--force", built.image_id, check=False)


def upload_sessions(entries: list[Entry]) -> dict[str, list[Entry]]:
    """The requests of each upload session, in order: the POST (its Location names the session), PATCHes, PUT."""
    sessions: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        found = SESSION.search(entry.location if entry.method == "POST" else entry.uri)
        if found and entry.method in ("POST", "PATCH", "PUT"):
            sessions[found.group(1)].append(entry)
    return dict(sessions)


def finished_sessions(entries: list[Entry]) -> list[list[Entry]]:
    return [s for s in upload_sessions(entries).values() if s[-1].method == "PUT" and s[-1].status == 201]


def acknowledged(entries: list[Entry]) -> list[tuple[str, str]]:
    """(URL path, digest) of every blob and manifest a client was told is stored (201)."""
    found = []
    for entry in entries:
        if entry.status != 201:
            continue
        assert entry.digest.startswith("sha256:"), entry
        name = entry.uri.split("?")[0].removeprefix("/v2/")
        kind = "manifests" if "/manifests/" in entry.uri else "blobs"
        found.append((f"/v2/{name.split(f'/{kind}/')[0]}/{kind}/{entry.digest}", entry.digest))
    return found


def assert_stored(replica: Replica, stored: list[tuple[str, str]]) -> None:
    accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
    with httpx.Client(base_url=replica.server.url, timeout=60, trust_env=False) as http:
        for path, digest in stored:
            response = http.get(path, headers={"Accept": accept})
            assert response.status_code == 200, f"{path} on {replica.address}: {response.status_code}"
            assert "sha256:" + hashlib.sha256(response.content).hexdigest() == digest, path


def test_docker_push_crosses_replicas_then_docker_and_runtime_pull(
    dockerd: DockerDaemon, rt: RuntimeCli, image: AppImage, ha_database: str, moto_s3: MotoServer, tmp_path: Path
) -> None:
    with cluster(tmp_path / "ha", ha_database, moto_s3) as ha:
        ref = f"{ha.host}/e2e/ha:v1"
        digest = push_as(dockerd, image, ref)
        sessions = finished_sessions(ha.nginx.entries())
        assert len(sessions) == 4, sessions  # three layers and the config
        for session in sessions:
            assert [e.method for e in session] == ["POST", "PATCH", "PUT"], session
            assert len({e.replica for e in session}) == 3, f"one upload, three replicas: {session}"
        docker_forget(dockerd, ref, image.tag)

        pull_fresh(dockerd, ref)
        assert dockerd.inspect(ref, "{{index .RepoDigests 0}}") == f"{ha.host}/e2e/ha@{digest}"
        assert_runs(dockerd, ref, image)
        assert rt("pull", "-q", ref).stdout.strip() == ref
        assert len(rt.layer_dirs()) == 3
        gets = {e.replica for e in ha.nginx.entries() if e.method == "GET"}
        assert gets == {r.address for r in ha.replicas}, "reads are balanced over every replica"


def test_a_replica_killed_mid_push_loses_nothing_acknowledged(
    dockerd: DockerDaemon, busybox_rootfs: Path, ha_database: str, moto_s3: MotoServer, tmp_path: Path
) -> None:
    image = new_image(dockerd, busybox_rootfs, tmp_path, blob_size=BIG_BLOB)
    try:
        with cluster(tmp_path / "ha", ha_database, moto_s3) as ha:
            ref = f"{ha.host}/e2e/killed:v1"
            dockerd.run("tag", image.tag, ref)
            victim, out = push_killing(dockerd, ha, ref)
            assert "Retrying" in out, out
            cut = [e for e in ha.nginx.entries() if e.status == 502]
            assert cut and all(victim.address in e.upstream for e in cut), cut
            stored = acknowledged(ha.nginx.entries())
            assert len(stored) >= 5, stored  # every blob and the manifest
            for replica in ha.replicas:
                if replica is not victim:
                    assert_stored(replica, stored)
            victim.server.start()
            assert_stored(victim, stored)

            docker_forget(dockerd, ref, image.tag)
            pull_fresh(dockerd, ref)
            assert_runs(dockerd, ref, image)
    finally:
        dockerd.run("rmi", "--force", image.image_id, check=False)


def push_killing(dockerd: DockerDaemon, ha: Cluster, ref: str) -> tuple[Replica, str]:
    """`docker push ref` while the first S3 part write of any replica is held; that replica is killed -9 then, in
    the middle of docker's request. Returns the replica killed and docker's output (its push must succeed)."""
    ha.proxy.hold("PUT", UPLOAD_PART)
    with ThreadPoolExecutor(1) as pool:
        push = pool.submit(dockerd.run, "push", ref)
        wait_until(lambda: push.done() or ha.proxy.holding.is_set(), what="an S3 part write")
        assert ha.proxy.held is not None, f"the push ended before any replica wrote a part: {push.result()}"
        victim = ha.sender(ha.proxy.held)
        victim.kill()
        ha.proxy.release()
        result = push.result()
    assert result.returncode == 0, result
    return victim, result.stdout + result.stderr


def token_key(path: Path) -> Path:
    """The token service's signing key, made once by the operator and given to every replica."""
    key = ec.generate_private_key(ec.SECP256R1())
    encoding, pkcs8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    path.write_bytes(key.private_bytes(encoding, pkcs8, serialization.NoEncryption()))
    path.chmod(0o600)
    return path


def token_config(root: Path) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    add_users(root / "htpasswd")
    rules = [{"users": ["alice"], "repositories": ["e2e/*"], "actions": ["*"]}]
    server = {"key": str(token_key(root / "token.pem")), "htpasswd": str(root / "htpasswd"), "access": rules}
    return {"auth": {"token": {"service": "ha-registry", "issuer": "ha-token-service", "server": server}}}


def test_docker_login_on_one_replica_push_through_the_others(
    dockerd: DockerDaemon, image: AppImage, ha_database: str, moto_s3: MotoServer, tmp_path: Path
) -> None:
    extra = token_config(tmp_path / "shared")
    with cluster(tmp_path / "ha", ha_database, moto_s3, extra=extra, token_replica=True) as ha:
        ref = f"{ha.host}/e2e/login:v1"
        try:
            docker_login(dockerd, ha.host, "alice", PASSWORDS["alice"])
            push_as(dockerd, image, ref)
            docker_forget(dockerd, ref, image.tag)
            pull_fresh(dockerd, ref)
        finally:
            dockerd.run("logout", ha.host, check=False)
            dockerd.run("rmi", "--force", ref, check=False)
        issuer, *others = (r.address for r in ha.replicas)
        entries = ha.nginx.entries()
        tokens = {e.replica for e in entries if e.uri.startswith("/auth/")}
        api = [e.replica for e in entries if e.uri.startswith("/v2/") and e.status != 401]
        assert tokens == {issuer}, entries
        assert set(api) == set(others), entries
        assert_refresh_token_works_elsewhere(ha)


def assert_refresh_token_works_elsewhere(ha: Cluster) -> None:
    """A refresh token from one replica gets an access token from another, which a third accepts."""
    first, second, third = (r.server.url for r in ha.replicas)
    form = {"grant_type": "password", "username": "alice", "password": PASSWORDS["alice"], "service": "ha-registry"}
    scope = {"scope": "repository:e2e/login:pull"}
    response = httpx.post(f"{first}/auth/token", data=form | scope | {"access_type": "offline"}, trust_env=False)
    assert response.status_code == 200, response.text
    refresh = {"grant_type": "refresh_token", "refresh_token": response.json()["refresh_token"]}
    response = httpx.post(f"{second}/auth/token", data=refresh | scope | {"service": "ha-registry"}, trust_env=False)
    assert response.status_code == 200, response.text
    bearer = {"Authorization": f"Bearer {response.json()['access_token']}"}
    response = httpx.get(f"{third}/v2/e2e/login/tags/list", headers=bearer, trust_env=False)
    assert response.status_code == 200 and response.json()["tags"] == ["v1"], response.text


def test_location_urls_are_https_behind_tls_termination(ha_database: str, moto_s3: MotoServer, tmp_path: Path) -> None:
    authority = Authority("ha-test-ca")
    certificate = authority.issue(tmp_path, "nginx", server=True)
    verify = client_context(authority.write(tmp_path / "ca.crt"))
    data = b"behind tls termination\n" * 1000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with cluster(tmp_path / "ha", ha_database, moto_s3, tls=certificate) as ha:
        base = ha.nginx.tls_url()
        with httpx.Client(base_url=base, verify=verify, trust_env=False, timeout=60) as http:
            started = http.post("/v2/e2e/tls/blobs/uploads/")
            assert started.status_code == 202, started.text
            assert started.headers["location"].startswith(f"{base}/v2/e2e/tls/blobs/uploads/"), started.headers
            written = http.patch(started.headers["location"], content=iter([data[:5000], data[5000:]]))
            assert written.status_code == 202, written.text
            assert written.headers["location"].startswith(f"{base}/v2/e2e/tls/blobs/uploads/"), written.headers
            finished = http.put(written.headers["location"], params={"digest": digest})
            assert finished.status_code == 201, finished.text
            assert finished.headers["location"] == f"{base}/v2/e2e/tls/blobs/{digest}"
            assert http.get(finished.headers["location"]).content == data
        [session] = finished_sessions(ha.nginx.entries())
        assert len({e.replica for e in session}) == 3, session
