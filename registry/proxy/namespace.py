"""spec.md "Registry Proxying" (main branch): a pull may carry ``?ns=<source host>``, the registry the client took
the name from. When an upstream answers to that namespace (``proxies.<prefix>.namespace``, by default its host;
docker.io for Docker Hub), the request is served from that upstream's prefix:
``GET /v2/library/alpine/...?ns=docker.io`` as ``GET /v2/dockerhub/library/alpine/...``, before any route or
access check sees it, and the response says ``OCI-Namespace: docker.io``. An ``ns`` no upstream answers to is
ignored, as the spec allows."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.proxy.config import ProxyConfig

PULL_METHODS = frozenset({"GET", "HEAD"})
NOT_REPOSITORIES = frozenset({"", "_catalog"})


class ProxyNamespaces:
    def __init__(self, app: ASGIApp, proxy: ProxyConfig, prefix: str = "") -> None:
        self.app = app
        self.proxy = proxy
        self.root = f"{prefix}/v2/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        namespace = self._namespace(scope)
        upstream = self.proxy.by_namespace(namespace) if namespace else None
        if upstream is None or namespace is None:
            return await self.app(scope, receive, send)
        rest = scope["path"][len(self.root) :]
        path = self.root + upstream.local_name(rest)
        scope = {**scope, "path": path, "raw_path": path.encode()}
        header = (b"oci-namespace", namespace.encode())

        async def send_with_namespace(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_namespace)

    def _namespace(self, scope: Scope) -> str | None:
        if scope["type"] != "http" or scope["method"] not in PULL_METHODS or not scope["path"].startswith(self.root):
            return None
        if scope["path"][len(self.root) :].split("/", 1)[0] in NOT_REPOSITORIES:
            return None
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("ns")
        return values[0] if values and values[0].isprintable() else None
