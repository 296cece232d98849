"""Pulls through a pull-through cache: ``.venv/bin/python bench/proxy.py [--rounds N]``.

An upstream (our registry, filesystem storage) holds an image of a config and four 32 MiB layers. In front of it, on
the same machine, our registry and distribution's ``docker-registry`` each as a pull-through cache (``proxy:
remoteurl``). A pull is what docker does: the manifest by tag, then the config and layers, three at a time. Each
round: a direct pull from the upstream, then for each cache in turn (the order alternating) a cold pull (a fresh
cache) and a warm pull (the same pull again). Prints the median seconds of each and the ratio ours/reference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import SERVER_ENV, Server, compile_ours, config_text, free_port  # noqa: E402

MiB = 1 << 20
REPO, TAG = "library/bench", "v1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def push(base_url: str, blobs: list[bytes]) -> None:
    with httpx.Client(base_url=base_url, timeout=600, trust_env=False) as client:
        for data in blobs:
            start = client.post(f"/v2/{REPO}/blobs/uploads/")
            location = httpx.URL(start.headers["location"]).copy_merge_params({"digest": _digest(data)})
            assert client.put(location, content=data).status_code == 201
        layers = [_descriptor("application/vnd.oci.image.layer.v1.tar", data) for data in blobs[1:]]
        config = _descriptor("application/vnd.oci.image.config.v1+json", blobs[0])
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers})
        put = client.put(f"/v2/{REPO}/manifests/{TAG}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
        assert put.status_code == 201, put.text


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data)}


def pull(base_url: str) -> float:
    """Seconds for docker's pull: the manifest, then every blob (three at a time), each checked against its digest."""
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, timeout=600, trust_env=False) as client:
        response = client.get(f"/v2/{REPO}/manifests/{TAG}", headers={"Accept": OCI_MANIFEST})
        assert response.status_code == 200, response.text
        manifest = response.json()
        wanted = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]

        def fetch(digest: str) -> None:
            hasher = hashlib.sha256()
            with client.stream("GET", f"/v2/{REPO}/blobs/{digest}") as blob:
                assert blob.status_code == 200
                for chunk in blob.iter_bytes(MiB):
                    hasher.update(chunk)
            assert "sha256:" + hasher.hexdigest() == digest

        with ThreadPoolExecutor(3) as pool:
            list(pool.map(fetch, wanted))
    return time.perf_counter() - started


def cache_server(name: str, root: Path, upstream: str) -> Server:
    data_dir = root / name
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    port = free_port()
    config = yaml.safe_load(config_text(port, data_dir, name == "ours"))
    config["proxy"] = {"remoteurl": upstream}
    path = data_dir / "config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    command = (
        [sys.executable, "-m", "registry", "serve", str(path)]
        if name == "ours"
        else ["docker-registry", "serve", str(path)]
    )
    return Server(name, command, port, data_dir, env=SERVER_ENV)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    compile_ours()
    blobs = [b'{"architecture":"amd64","os":"linux"}'] + [os.urandom(32 * MiB) for _ in range(4)]
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent.parent.parent) as tmp:
        root = Path(tmp)
        port = free_port()
        (root / "upstream").mkdir()
        (root / "upstream" / "config.yml").write_text(config_text(port, root / "upstream", True))
        upstream = Server(
            "upstream",
            [sys.executable, "-m", "registry", "serve", str(root / "upstream" / "config.yml")],
            port,
            root / "upstream",
            env=SERVER_ENV,
        )
        upstream.start()
        try:
            push(upstream.base_url, blobs)
            for round_ in range(args.rounds):
                times.setdefault("direct from the upstream", []).append(pull(upstream.base_url))
                for name in ("ours", "reference") if round_ % 2 == 0 else ("reference", "ours"):
                    cache = cache_server(name, root, upstream.base_url)
                    cache.start()
                    try:
                        times.setdefault(f"{name} cold", []).append(pull(cache.base_url))
                        times.setdefault(f"{name} warm", []).append(pull(cache.base_url))
                    finally:
                        cache.stop()
        finally:
            upstream.stop()
    report(times)


def report(times: dict[str, list[float]]) -> None:
    median = {key: statistics.median(values) for key, values in times.items()}
    print("| pull of 4 x 32 MiB layers | seconds (median) | MiB/s |")
    print("|---|---:|---:|")
    for key, seconds in median.items():
        print(f"| {key} | {seconds:.3f} | {128 / seconds:.0f} |")
    for kind in ("cold", "warm"):
        print(f"ours/reference {kind}: {median[f'ours {kind}'] / median[f'reference {kind}']:.2f}x the time")


if __name__ == "__main__":
    main()
