"""The deployments on paper: docker-compose.yml's ha profile and deploy/kubernetes/, checked without running them.

The compose file is parsed (no `docker compose` here) and its wiring checked; its nginx.conf passes `nginx -t`; each
Kubernetes document passes kubernetes-validate's strict schema check, and the references between them hold. Both
registry configurations load with no key ignored, and every nginx carries the settings of README's "HA layout".
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from registry.config import load_config
from tests.e2e.nginx import PROXY_SETTINGS

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
KUBERNETES = ROOT / "deploy" / "kubernetes"
HA_SERVICES = {
    "ha-nginx",
    "ha-registry-1",
    "ha-registry-2",
    "ha-registry-3",
    "ha-postgres",
    "ha-minio",
    "ha-minio-bucket",
}
REPLICAS = ["ha-registry-1", "ha-registry-2", "ha-registry-3"]
KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
#: What every nginx in front of the registry sets (the e2e tier's, compose's, the README's snippet).
NGINX_SETTINGS = [
    "client_max_body_size 0;",
    "chunked_transfer_encoding on;",
    *(line.strip() for line in PROXY_SETTINGS.splitlines()),
]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def ha_services() -> dict[str, Any]:
    return {name: s for name, s in compose()["services"].items() if "ha" in s.get("profiles", [])}


def mounted(service: dict[str, Any], target: str) -> Path:
    """The file of this repository a compose service mounts at `target`."""
    for volume in service["volumes"]:
        source, mount, *_ = volume.split(":")
        if mount == target:
            return ROOT / source
    raise AssertionError(f"nothing is mounted at {target}: {service['volumes']}")


def replica_config_path() -> Path:
    service = ha_services()["ha-registry-1"]
    return mounted(service, service["command"][1])


def test_compose_ha_profile_has_nginx_three_replicas_postgres_and_minio() -> None:
    services = ha_services()
    assert set(services) == HA_SERVICES
    published = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert published == {"ha-nginx": ["5002:80"]}, "only nginx is reached from outside"
    every_port = [p.split(":")[0] for s in compose()["services"].values() for p in s.get("ports", [])]
    assert len(every_port) == len(set(every_port)), every_port
    assert all(s["networks"] == ["ha"] for s in services.values())
    first = services[REPLICAS[0]]
    assert all(services[name] == first for name in REPLICAS), "the replicas are configured alike"
    assert first["depends_on"]["ha-postgres"] == {"condition": "service_healthy"}
    assert first["depends_on"]["ha-minio-bucket"] == {"condition": "service_completed_successfully"}
    assert set(services["ha-nginx"]["depends_on"]) == set(REPLICAS)


def test_compose_replica_config_loads_and_names_the_shared_services() -> None:
    services = ha_services()
    replica = services["ha-registry-1"]
    config = load_config(str(replica_config_path()), replica["environment"])
    assert config.ignored_sections == () and config.ignored_env == ()
    assert config.storage.driver == "s3"
    assert config.storage.params["regionendpoint"] == "http://ha-minio:9000"
    assert config.storage.params["secretkey"] == services["ha-minio"]["environment"]["MINIO_ROOT_PASSWORD"]
    assert f"ha/{config.storage.params['bucket']}" in services["ha-minio-bucket"]["command"][0]
    assert "@ha-postgres/" in config.database_url
    subnet = ipaddress.ip_network(compose()["networks"]["ha"]["ipam"]["config"][0]["subnet"])
    nginx_address = next(subnet.hosts())
    assert config.http.trustedproxies.trusts(str(nginx_address)), "nginx's X-Forwarded-* must be believed"
    assert config.http.debug.addr.endswith(":5001") and "127.0.0.1:5001/debug/health" in str(replica["healthcheck"])


def nginx_configs() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    snippet = re.search(r"## HA layout.*?```nginx\n(.*?)```", readme, re.DOTALL)
    assert snippet, "README's HA layout section has no nginx snippet"
    compose_conf = mounted(ha_services()["ha-nginx"], "/etc/nginx/nginx.conf").read_text()
    return {"README": snippet.group(1), "docker-compose": compose_conf}


@pytest.mark.parametrize("where", ["README", "docker-compose"])
def test_every_nginx_carries_the_settings(where: str) -> None:
    lines = {re.sub(r"\s+#.*", "", line).strip() for line in nginx_configs()[where].splitlines()}
    assert [setting for setting in NGINX_SETTINGS if setting not in lines] == []


def test_compose_nginx_upstreams_are_the_replicas() -> None:
    servers = re.findall(r"^\s*server ([\w.-]+):5000;", nginx_configs()["docker-compose"], re.MULTILINE)
    assert servers == REPLICAS


def test_compose_nginx_conf_passes_nginx_t(tmp_path: Path) -> None:
    nginx = shutil.which("nginx")
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx; scripts/test.sh does it as root)")
    text = re.sub(r"ha-registry-\d", "127.0.0.1", nginx_configs()["docker-compose"])  # no compose DNS here
    (tmp_path / "nginx.conf").write_text(text)
    (tmp_path / "logs").mkdir()
    args = [nginx, "-t", "-q", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", "nginx.conf"]
    result = subprocess.run([*args, "-g", f"pid {tmp_path / 'nginx.pid'};"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def kubernetes_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}:{doc['kind']}", doc)
        for path in sorted(KUBERNETES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def kind(name: str) -> dict[str, Any]:
    [doc] = [doc for _, doc in kubernetes_documents() if doc["kind"] == name]
    return doc


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("name", "document"), kubernetes_documents(), ids=[n for n, _ in kubernetes_documents()])
def test_kubernetes_manifest_is_valid(name: str, document: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(document, version, strict=True)


def test_the_validator_refuses_a_misspelled_field() -> None:
    broken = kind("Deployment")
    broken["spec"]["replica"] = broken["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_kubernetes_deployment_wiring() -> None:
    deployment, secret, configmap = kind("Deployment"), kind("Secret"), kind("ConfigMap")
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"]]
    assert {r["name"] for r in refs} == {secret["metadata"]["name"]}
    files = [item["key"] for item in volumes["secret"]["secret"]["items"]]
    assert {r["key"] for r in refs} | set(files) == set(secret["stringData"])
    assert volumes["config"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert container["args"] == ["serve", f"{mounts['config']}/config.yml"]

    raw = yaml.safe_load(configmap["data"]["config.yml"])
    server = raw["auth"]["token"]["server"]
    assert {server["key"], server["htpasswd"]} == {f"{mounts['secret']}/{name}" for name in files}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert raw["http"]["addr"] == f":{ports['http']}" and raw["http"]["debug"]["addr"] == f":{ports['debug']}"
    assert container["readinessProbe"]["httpGet"] == {"path": "/debug/health", "port": "debug"}
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert (
        kind("Service")["spec"]["selector"] == labels == kind("PodDisruptionBudget")["spec"]["selector"]["matchLabels"]
    )
    assert kind("Service")["spec"]["ports"][0]["targetPort"] in ports


def test_kubernetes_config_loads_with_the_secret_environment(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(kind("ConfigMap")["data"]["config.yml"])
    environ = {
        e["name"]: "from-the-secret" for e in kind("Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    environ["REGISTRY_DATABASE_URL"] = "postgresql+asyncpg://registry:pw@postgres/registry"
    config = load_config(str(path), environ)
    assert config.ignored_sections == () and config.ignored_env == ()
    assert config.storage.driver == "s3" and config.storage.params["accesskey"] == "from-the-secret"
    assert config.database_url.startswith("postgresql+asyncpg://")


def test_ingress_annotations_carry_the_nginx_settings() -> None:
    annotations = kind("Ingress")["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert annotations[prefix + "proxy-body-size"] == "0"
    assert annotations[prefix + "proxy-request-buffering"] == annotations[prefix + "proxy-buffering"] == "off"
    assert int(annotations[prefix + "proxy-read-timeout"]) >= 900
    backend = kind("Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == kind("Service")["metadata"]["name"]
