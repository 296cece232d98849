"""`docker save` and `docker load`: images as a docker-archive tarball.

    manifest.json            [{"Config": "<hex>.json", "RepoTags": ["app:1"], "Layers": ["<hex>/layer.tar", ...]}]
    repositories             {"app": {"1": "<hex of the top layer>"}}
    <config hex>.json        the image's config, byte for byte (its digest is the image ID)
    <diff_id hex>/layer.tar  one layer, uncompressed: its sha256 is the config's diff_id

Saving writes the layers uncompressed, as docker does. Loading accepts what docker save writes (older and newer
layouts alike: the member names come from manifest.json), with layers plain, gzip or zstd; every layer must hash
to its diff_id. The store keeps layers compressed, so a loaded layer is gzipped into a blob (deterministically:
the same layer makes the same blob), unpacked, and the image gets a Docker v2 manifest that `push` can send.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import shutil
import tarfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

from ..errors import DigestMismatch, UsageError
from ..images import file_digest
from ..mediatypes import DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST
from ..pull import unpack_layer
from ..reference import parse
from ..store import ImageRecord, Store, hex_of
from ..tarstream import Limits
from ..unpack import CHUNK, decompressed

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

MAX_JSON = 4 << 20
QUEUED = 8  # chunks written ahead of a slow client


@dataclass
class Saved:
    """One image to save: its record and the names docker should load it as."""

    record: ImageRecord
    tags: list[str]


# ---- save --------------------------------------------------------------------------------------------------------


def save(store: Store, saved: list[Saved], out: BinaryIO) -> None:
    """Write the docker-archive of `saved` to `out` as a tar stream (nothing is seeked)."""
    entries: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for item in saved:
            record = item.record
            config_name = f"{hex_of(record.config)}.json"
            add_bytes(tar, config_name, store.read_blob(record.config))
            for digest, diff_id in zip(record.layers, record.diff_ids, strict=True):
                if diff_id not in written:
                    add_layer(tar, store, digest, diff_id)
                    written.add(diff_id)
            layers = [f"{hex_of(d)}/layer.tar" for d in record.diff_ids]
            entries.append({"Config": config_name, "RepoTags": item.tags, "Layers": layers})
            for tag in item.tags:
                repo, _, name = tag.rpartition(":")
                repositories.setdefault(repo, {})[name] = hex_of(record.diff_ids[-1]) if record.diff_ids else ""
        add_bytes(tar, "manifest.json", json.dumps(entries).encode())
        add_bytes(tar, "repositories", json.dumps(repositories).encode())


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def add_layer(tar: tarfile.TarFile, store: Store, digest: str, diff_id: str) -> None:
    """The stored (compressed) blob, uncompressed through a temporary file: a tar member's size comes first."""
    fd, tmp = store.temp_file("save-")
    try:
        with open(fd, "wb") as plain, decompressed(store.blob_path(digest)) as stream:
            shutil.copyfileobj(stream, plain, CHUNK)
        directory = tarfile.TarInfo(hex_of(diff_id))
        directory.type, directory.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(directory)
        add_bytes(tar, f"{hex_of(diff_id)}/VERSION", b"1.0")
        info = tar.gettarinfo(str(tmp), arcname=f"{hex_of(diff_id)}/layer.tar")
        info.mode, info.uid, info.gid, info.uname, info.gname = 0o644, 0, 0, "", ""
        with tmp.open("rb") as f:
            tar.addfile(info, f)
    finally:
        tmp.unlink(missing_ok=True)


# ---- load --------------------------------------------------------------------------------------------------------


def load(store: Store, archive: Path, limits: Limits) -> list[str]:
    """Store every image of a docker-archive; the names loaded (an untagged image: its ID).
    UsageError when the archive is not one, DigestMismatch when a layer is not what its config says."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            entries = read_json(tar, "manifest.json")
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise UsageError("manifest.json is not a list of images")
            loaded: list[str] = []
            for entry in entries:
                loaded.extend(load_image(store, tar, entry, limits))
            return loaded
    except tarfile.TarError as exc:
        raise UsageError(f"not a tar archive: {exc}") from None


def read_member(tar: tarfile.TarFile, name: Any) -> IO[bytes]:
    member = tar.getmember(name) if isinstance(name, str) and name in tar.getnames() else None
    stream = tar.extractfile(member) if member is not None and member.isfile() else None
    if stream is None:
        raise UsageError(f"the archive has no file {name!r}")
    return stream


def read_json(tar: tarfile.TarFile, name: Any) -> Any:
    data = read_member(tar, name).read(MAX_JSON + 1)
    if len(data) > MAX_JSON:
        raise UsageError(f"{name} is larger than {MAX_JSON} bytes")
    try:
        return json.loads(data)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None


def load_image(store: Store, tar: tarfile.TarFile, entry: dict[str, Any], limits: Limits) -> list[str]:
    config_bytes = read_member(tar, entry.get("Config")).read(MAX_JSON + 1)
    try:
        config = json.loads(config_bytes)
        diff_ids = list(config["rootfs"]["diff_ids"])
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{entry.get('Config')} is not an image config with rootfs.diff_ids") from None
    names = entry.get("Layers") or []
    tags = [str(parse(t)) for t in entry.get("RepoTags") or []]
    if not isinstance(names, list) or len(names) != len(diff_ids):
        raise UsageError(f"{entry.get('Config')}: {len(diff_ids)} diff_ids, but the archive lists {names!r}")
    blobs = [load_layer(store, tar, name, diff_id, limits) for name, diff_id in zip(names, diff_ids, strict=True)]
    config_digest = store.put_blob(config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": DOCKER_LAYER_GZIP, "digest": d, "size": s} for d, s in blobs],
    }
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    record = ImageRecord(
        manifest=store.put_blob(manifest_bytes),
        manifest_media_type=DOCKER_MANIFEST,
        config=config_digest,
        layers=[d for d, _ in blobs],
        diff_ids=diff_ids,
        size=sum(s for _, s in blobs),
        created=str(config.get("created") or ""),
    )
    with store.locked():
        images = store.images()
        images.update(dict.fromkeys(tags, record))
        store.save_images(images)
    return tags or [config_digest]


def load_layer(store: Store, tar: tarfile.TarFile, name: Any, diff_id: str, limits: Limits) -> tuple[str, int]:
    """Gzip one layer of the archive into a blob, checking it hashes to `diff_id`, and unpack it: (digest, size)."""
    fd, raw = store.temp_file("load-")
    gz_path = raw.with_name(raw.name + ".gz")
    try:
        with open(fd, "wb") as out:
            shutil.copyfileobj(read_member(tar, name), out, CHUNK)
        sha = hashlib.sha256()
        with (
            decompressed(raw) as stream,
            gz_path.open("wb") as packed,
            gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=packed, mtime=0) as gz,  # no name, no time
        ):
            for chunk in chunks(stream):
                sha.update(chunk)
                gz.write(chunk)
        if "sha256:" + sha.hexdigest() != diff_id:
            raise DigestMismatch(f"layer {name} hashes to sha256:{sha.hexdigest()}, but its config says {diff_id}")
        size = gz_path.stat().st_size
        digest = file_digest(gz_path)
        store.commit_blob(gz_path, digest)
    finally:
        raw.unlink(missing_ok=True)
        gz_path.unlink(missing_ok=True)
    unpack_layer(store, digest, diff_id, limits)
    return digest, size


def chunks(stream: IO[bytes]) -> Iterator[bytes]:
    return iter(lambda: stream.read(CHUNK), b"")


# ---- a tar written in a thread, sent as it is written ------------------------------------------------------------


class Pipe(io.RawIOBase):
    """What `tarfile` writes to: bytes handed to `send` in chunks of CHUNK."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        super().__init__()
        self.send = send
        self.pending = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data)
        self.pending += view
        if len(self.pending) >= CHUNK:
            self.send(bytes(self.pending))
            self.pending.clear()
        return view.nbytes

    def finish(self) -> None:
        if self.pending:
            self.send(bytes(self.pending))
            self.pending.clear()


def written_in_thread(write: Callable[[BinaryIO], None]) -> AsyncIterator[bytes]:
    """Run `write(out)` in a thread and yield what it writes; at most QUEUED chunks wait for a slow client, and
    a client that leaves stops the writer at its next chunk."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue()
    room = threading.Semaphore(QUEUED)
    gone = threading.Event()

    def send(item: bytes) -> None:
        while not room.acquire(timeout=0.5) or gone.is_set():
            if gone.is_set():
                raise ConnectionError("the client went away")
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def target() -> None:
        pipe = Pipe(send)
        try:
            write(cast(BinaryIO, pipe))
            pipe.finish()
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except Exception as exc:  # noqa: BLE001 (ends the stream; the client sees a cut tar)
            loop.call_soon_threadsafe(queue.put_nowait, exc)

    async def chunks() -> AsyncIterator[bytes]:
        task = asyncio.ensure_future(asyncio.to_thread(target))
        try:
            while (item := await queue.get()) is not None:
                room.release()
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            gone.set()
            await asyncio.shield(task)

    return chunks()
