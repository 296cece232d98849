"""Image routes: pull (`images/create`), list, inspect, tag, push and rmi, over the CLI's own pull, push and store.

Pull and push stream the events of `runtime.progress` as JSON lines. The status line waits for the first event:
a failure before it (no such manifest, refused credentials, no such local image) is an answer with its own status,
as dockerd gives; a failure after it is the stream's last line, `{"errorDetail": ..., "error": ...}`.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import fnmatch
import json
import os
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx

from .. import containers, images, pull, push, reference
from ..config import Settings
from ..errors import AuthError, ConflictError, DigestMismatch, ImageNotFound, RegistryError, UnpackError, UsageError
from ..progress import Event, Report, error_line, json_line, short
from ..reference import Reference
from ..store import ImageRecord, Store
from . import archive
from .http import ApiError, Reply, Request, Response, Streamed, empty, json_response
from .router import Route

Work = Callable[[Report], object]
DONE = b""

# ---- names -------------------------------------------------------------------------------------------------------


def familiar(name: str) -> str:
    """A stored name as docker shows it: `docker.io/library/busybox:1` is `busybox:1`."""
    if not name.startswith("docker.io/"):
        return name
    rest = name.removeprefix("docker.io/")
    repo = rest.split("@")[0].split(":")[0]
    return rest.removeprefix("library/") if repo.count("/") == 1 and repo.startswith("library/") else rest


def parse_reference(text: str) -> Reference:
    try:
        return reference.parse(text)
    except UsageError as exc:
        raise ApiError(400, f"invalid reference format: {exc}") from None


def lookup(store: Store, name: str) -> list[str]:
    try:
        return images.find(store, name)
    except ImageNotFound:
        raise ApiError(404, f"No such image: {shown(name)}") from None


def shown(name: str) -> str:
    """A name as dockerd repeats it in an error: `app` is `app:latest`; an ID, or no reference at all, as given."""
    if name.startswith("sha256:") or all(c in "0123456789abcdef" for c in name):
        return name
    try:
        return familiar(str(reference.parse(name)))
    except UsageError:
        return name


def registry_auth(header: str | None) -> tuple[str, str] | None:
    """X-Registry-Auth: base64url JSON {username, password, serveraddress}; anything else is no credentials."""
    if not header:
        return None
    try:
        doc = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except ValueError:
        return None
    user = doc.get("username") if isinstance(doc, dict) else None
    password = doc.get("password") if isinstance(doc, dict) else None
    return (user, password) if isinstance(user, str) and user and isinstance(password, str) else None


def settings_for(request: Request, registry: str) -> Settings:
    """The daemon's settings, with the request's credentials for `registry` when it sent some."""
    settings = request.context.settings
    credentials = registry_auth(request.headers.get("x-registry-auth"))
    if credentials is None:
        return settings
    copy = dataclasses.replace(settings, auths=dict(settings.auths))
    copy.set_credentials(registry, *credentials)
    return copy


# ---- progress as JSON lines --------------------------------------------------------------------------------------


async def progress_stream(work: Work, failed: Callable[[Exception], Exception]) -> Reply:
    """Run `work(report)` in a thread. The first event starts the 200 stream; a failure before it is raised as
    `failed(exc)`. A client that leaves makes the next report raise, which ends the work."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | Exception] = asyncio.Queue()
    gone = threading.Event()

    def report(event: Event) -> None:
        if gone.is_set():
            raise ConnectionError("the client went away")
        line = json_line(event)
        if line:
            loop.call_soon_threadsafe(queue.put_nowait, line)

    def target() -> None:
        try:
            work(report)
            loop.call_soon_threadsafe(queue.put_nowait, DONE)
        except Exception as exc:  # noqa: BLE001 (an answer, or the stream's last line)
            loop.call_soon_threadsafe(queue.put_nowait, exc)

    task = asyncio.ensure_future(asyncio.to_thread(target))
    first = await queue.get()
    if isinstance(first, Exception):
        await task
        raise failed(first)

    async def chunks() -> AsyncIterator[bytes]:
        item: bytes | Exception = first
        try:
            while item != DONE:
                if isinstance(item, Exception):
                    yield error_line(str(item) or type(item).__name__)
                    return
                yield item
                item = await queue.get()
        finally:
            gone.set()
            await asyncio.shield(task)

    return Streamed(chunks())


def pull_failure(ref: Reference) -> Callable[[Exception], Exception]:
    def failed(exc: Exception) -> Exception:
        if isinstance(exc, AuthError):
            return ApiError(500, f"pull access to {familiar(ref.name)} refused: {exc}")
        if isinstance(exc, RegistryError) and exc.status == 404:
            return ApiError(404, f"manifest for {familiar(str(ref))} not found: {exc}")
        if isinstance(exc, RegistryError | httpx.HTTPError):
            return ApiError(500, str(exc) or type(exc).__name__)
        return exc

    return failed


def push_failure(exc: Exception) -> Exception:
    if isinstance(exc, RegistryError | httpx.HTTPError):
        return ApiError(500, str(exc) or type(exc).__name__)
    return exc


# ---- handlers ----------------------------------------------------------------------------------------------------


async def create(request: Request) -> Reply:
    """`docker pull`: POST /images/create?fromImage=NAME&tag=TAG (the tag may be a digest)."""
    if request.query.get("fromSrc") is not None:
        raise ApiError(400, "importing an image from a tarball or URL (docker import) is not supported")
    name, tag = request.query.get("fromImage") or "", request.query.get("tag") or ""
    if not name:
        raise ApiError(400, "fromImage is required")
    ref = parse_reference(f"{name}@{tag}" if tag.startswith("sha256:") else f"{name}:{tag}" if tag else name)
    store, settings = request.context.store, settings_for(request, ref.registry)
    return await progress_stream(lambda report: pull.pull(store, settings, ref, report=report), pull_failure(ref))


async def push_image(request: Request) -> Reply:
    """`docker push`: POST /images/NAME/push?tag=TAG (no tag: every tag of NAME)."""
    name, tag = request.params["name"], request.query.get("tag") or ""
    repo = parse_reference(name)
    store = request.context.store
    stored = await asyncio.to_thread(store.images)
    wanted = [str(repo.with_tag(tag))] if tag else [n for n in stored if reference.parse(n).name == repo.name]
    if not wanted or any(n not in stored for n in wanted):
        raise ApiError(404, f"An image does not exist locally with the tag: {familiar(repo.name)}")
    settings = settings_for(request, repo.registry)

    def work(report: Report) -> None:
        for n in wanted:
            push.push(store, settings, reference.parse(n), report)

    return await progress_stream(work, push_failure)


async def tag_image(request: Request) -> Reply:
    """`docker tag`: POST /images/NAME/tag?repo=REPO&tag=TAG, 201."""
    repo, tag = request.query.get("repo") or "", request.query.get("tag") or ""
    if not repo:
        raise ApiError(400, "repository name must have at least one component")
    target = parse_reference(f"{repo}:{tag}" if tag else repo)
    if target.digest:
        raise ApiError(400, "refusing to create a tag with a digest reference")
    store = request.context.store
    source = lookup(store, request.params["name"])[0]
    await asyncio.to_thread(images.tag, store, source, target)
    return empty(201)


async def remove(request: Request) -> Reply:
    """`docker rmi`: DELETE /images/NAME?force=1, the Untagged and Deleted list."""
    store, name = request.context.store, request.params["name"]
    return json_response(await asyncio.to_thread(untag, store, name, request.query.flag("force")))


async def list_images(request: Request) -> Reply:
    """`docker images`: GET /images/json?filters={"reference":{"app":true}}."""
    patterns = reference_filter(request.query.get("filters"))
    found = await asyncio.to_thread(summaries, request.context.store)
    if patterns is not None:
        found = [s for s in found if any(matches(t, p) for t in s["RepoTags"] for p in patterns)]
    return json_response(found)


async def inspect(request: Request) -> Reply:
    """`docker image inspect`: GET /images/NAME/json."""
    store = request.context.store
    names = lookup(store, request.params["name"])
    return json_response(await asyncio.to_thread(inspect_doc, store, names[0]))


async def save_images(request: Request) -> Reply:
    """`docker save`: GET /images/get?names=A&names=B (or /images/NAME/get), a docker-archive tarball."""
    store = request.context.store
    names = request.query.getall("names") or [request.params.get("name", "")]
    if not all(names):
        raise ApiError(400, "no image names given")
    saved = await asyncio.to_thread(to_save, store, names)
    chunks = archive.written_in_thread(lambda out: archive.save(store, saved, out))
    return Streamed(chunks, content_type="application/x-tar")


async def load_images(request: Request) -> Reply:
    """`docker load`: POST /images/load with a docker-archive body; a JSON line per image loaded."""
    store = request.context.store
    fd, tmp = store.temp_file("upload-")
    try:
        out = await asyncio.to_thread(os.fdopen, fd, "wb")
        try:
            async for chunk in request.stream():
                await asyncio.to_thread(out.write, chunk)
        finally:
            await asyncio.to_thread(out.close)
        try:
            loaded = await asyncio.to_thread(archive.load, store, tmp, request.context.settings.unpack)
        except (UsageError, DigestMismatch, UnpackError) as exc:
            raise ApiError(400, f"invalid docker-archive: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    said = [f"Loaded image ID: {n}" if n.startswith("sha256:") else f"Loaded image: {familiar(n)}" for n in loaded]
    return Response(200, b"".join(json.dumps({"stream": s + "\n"}).encode() + b"\n" for s in said), "application/json")


def to_save(store: Store, names: list[str]) -> list[archive.Saved]:
    stored, by_id = store.images(), dict[str, archive.Saved]()
    for name in names:
        for key in lookup(store, name):
            item = by_id.setdefault(stored[key].config, archive.Saved(stored[key], []))
            if "@" not in key and familiar(key) not in item.tags:
                item.tags.append(familiar(key))
    return list(by_id.values())


ROUTES = [
    Route("POST", "/images/create", create),
    Route("GET", "/images/json", list_images),
    Route("GET", "/images/get", save_images),
    Route("POST", "/images/load", load_images),
    Route("GET", "/images/{name:path}/get", save_images),
    Route("GET", "/images/{name:path}/json", inspect),
    Route("POST", "/images/{name:path}/tag", tag_image),
    Route("POST", "/images/{name:path}/push", push_image),
    Route("DELETE", "/images/{name:path}", remove),
]

# ---- rmi ---------------------------------------------------------------------------------------------------------


def untag(store: Store, name: str, force: bool) -> list[dict[str, str]]:
    names = lookup(store, name)
    if len(names) > 1 and not force:
        config = store.images()[names[0]].config
        why = "image is referenced in multiple repositories"
        raise ApiError(409, f"conflict: unable to delete {short(config)} (must be forced) - {why}")
    answer: list[dict[str, str]] = []
    for n in names:
        answer.extend(untag_one(store, n, force))
    return answer


def untag_one(store: Store, name: str, force: bool) -> list[dict[str, str]]:
    record = store.images()[name]
    try:
        removed = images.remove_image(store, name, force=force)
    except ConflictError:
        user = next(c for c in containers.all_containers(store) if c.manifest == record.manifest)
        why = f"container {user.id[:12]} is using its referenced image {short(record.config)}"
        raise ApiError(
            409, f'conflict: unable to remove repository reference "{familiar(name)}" (must force) - {why}'
        ) from None
    answer = [{"Untagged": familiar(name)}]
    repo = reference.parse(name).name
    left = store.images()
    if not any(r.manifest == record.manifest and reference.parse(n).name == repo for n, r in left.items()):
        answer.append({"Untagged": f"{familiar(repo)}@{record.manifest}"})
    if "blob " + record.config in removed:
        answer.append({"Deleted": record.config})
    answer.extend({"Deleted": r.removeprefix("layer ")} for r in removed if r.startswith("layer "))
    return answer


# ---- what docker images and docker inspect show ------------------------------------------------------------------


def epoch(created: str) -> int:
    try:
        return int(datetime.fromisoformat(created).timestamp())
    except ValueError:
        return 0


def names_of(stored: dict[str, ImageRecord], config: str) -> tuple[list[str], list[str]]:
    """(RepoTags, RepoDigests) of the image whose ID is `config`."""
    names = sorted(n for n, r in stored.items() if r.config == config)
    tags = [familiar(n) for n in names if "@" not in n]
    digests = sorted({f"{familiar(reference.parse(n).name)}@{stored[n].manifest}" for n in names})
    return tags, digests


def summaries(store: Store) -> list[dict[str, Any]]:
    stored = store.images()
    by_id = {r.config: r for r in stored.values()}
    found = []
    for config, record in sorted(by_id.items(), key=lambda item: item[1].created, reverse=True):
        tags, digests = names_of(stored, config)
        labels = (store.config_doc(record).get("config") or {}).get("Labels") or None
        found.append({"Containers": -1, "Created": epoch(record.created), "Id": config, "Labels": labels,
                      "ParentId": "", "RepoDigests": digests, "RepoTags": tags, "SharedSize": -1,
                      "Size": record.size, "VirtualSize": record.size})  # fmt: skip
    return found


def inspect_doc(store: Store, name: str) -> dict[str, Any]:
    stored = store.images()
    record = stored[name]
    config = store.config_doc(record)
    tags, digests = names_of(stored, record.config)
    lower = ":".join(str(store.layer_dir(d)) for d in reversed(record.diff_ids))
    return {"Id": record.config, "RepoTags": tags, "RepoDigests": digests, "Parent": "", "Comment": "",
            "Created": record.created, "Container": "", "ContainerConfig": {}, "DockerVersion": "",
            "Author": config.get("author", ""), "Config": config.get("config") or {},
            "Architecture": config.get("architecture", ""), "Variant": config.get("variant", ""),
            "Os": config.get("os", ""), "Size": record.size, "VirtualSize": record.size,
            "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": lower}},
            "RootFS": {"Type": "layers", "Layers": record.diff_ids},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"}}  # fmt: skip


def reference_filter(text: str | None) -> list[str] | None:
    """The `reference` patterns of a `filters` query ({"reference": {"app": true}} or ["app"]), None for none."""
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        raise ApiError(400, f"invalid filters: {text}") from None
    wanted = doc.get("reference") if isinstance(doc, dict) else None
    if not wanted:
        return None
    return [str(p) for p in (wanted if isinstance(wanted, list) else wanted.keys() if isinstance(wanted, dict) else [])]


def matches(tag: str, pattern: str) -> bool:
    """docker's reference filter: the pattern against the name, or against name:tag when it names a tag."""
    repo = tag.rpartition(":")[0] if tag.rfind(":") > tag.rfind("/") else tag
    return fnmatch.fnmatchcase(tag if ":" in pattern.rpartition("/")[2] else repo, pattern)
