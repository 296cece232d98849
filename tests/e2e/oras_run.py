"""oras-py (the ORAS Python client) as its own process, the way a user's script drives it: log in, then push a
file as an artifact or pull one. Exits non-zero when the registry refuses.

    python oras_run.py push|pull HOST REF USER PASSWORD BACKEND FILE|DIR DOCKER_CONFIG [SUBJECT ARTIFACT_TYPE]

USER ``-``: no login (a registry without auth). SUBJECT (``mediaType@digest@size``) and ARTIFACT_TYPE, with push:
the artifact refers to that manifest (``oras push --subject``), its config's media type being ARTIFACT_TYPE.

oras-py 0.2.43 asks for a new token only after a 403; distribution (and so this registry) answers a token that
lacks a scope with 401 and `error="insufficient_scope"` (docker, containerd and containers/image fetch a new token
on a 401 only). The shim below lets oras-py treat that 401 as it treats a 403, and makes a refused login fail at
once instead of after oras-py's two minutes of retries.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import oras.auth
import oras.client
import oras.oci


def refresh_on_insufficient_scope(auth: Any) -> None:
    original = auth.authenticate_request

    def authenticate(response: Any, headers: Any, refresh: bool = False) -> Any:
        challenge = response.headers.get("Www-Authenticate", "")
        headers, changed = original(response, headers, refresh=refresh or 'error="insufficient_scope"' in challenge)
        if not changed:
            raise oras.auth.AuthenticationException(f"the registry refused: {response.status_code}")
        return headers, changed

    auth.authenticate_request = authenticate


def main(argv: list[str]) -> None:
    action, host, ref, user, password, backend, path, config, *referring = argv
    client = oras.client.OrasClient(hostname=host, insecure=True, auth_backend=backend)
    refresh_on_insufficient_scope(client.auth)
    if user != "-":
        client.login(username=user, password=password, hostname=host, config_path=config)
    if action == "push":
        os.chdir(os.path.dirname(path))
        extra: dict[str, Any] = {}
        if referring:
            media_type, digest, size = referring[0].split("@")
            extra = {"subject": oras.oci.Subject(media_type, digest, int(size))}
            extra["manifest_config"] = f"{os.devnull}:{referring[1]}"
        response = client.push(target=ref, files=[os.path.basename(path)], **extra)
        response.raise_for_status()
    else:
        files = client.pull(target=ref, outdir=path)
        if not files:
            sys.exit("pulled nothing")


if __name__ == "__main__":
    main(sys.argv[1:])
