"""Writers on S3: a multipart upload on the final key, continued across requests and processes.

Bytes are buffered until a part of ``chunksize`` is full, then uploaded (at most ``_PARTS_IN_FLIGHT`` at once).
The staging object ``<dir>/.<name>.partial`` exists from the writer's opening until its commit or cancel; ``close``
rewrites it with the tail bytes and, in its metadata, the upload id, the number of parts it covers and the size.
``commit`` finds it gone when the tree was deleted meanwhile (PathNotFound), exactly like the filesystem's staging
file. A crash between a part upload and ``close`` leaves parts the staging object does not count: the next writer
uploads over them, and the purge of stale upload sessions aborts whatever was abandoned.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING, Any

from storage_backends.base import SingleUseWriter
from storage_backends.errors import PathNotFound, StorageError

if TYPE_CHECKING:
    from storage_backends.s3 import S3Backend

_PARTS_IN_FLIGHT = 2


def staging_key(key: str) -> str:
    directory, _, name = key.rpartition("/")
    return f"{directory}/.{name}.partial" if directory else f".{name}.partial"


class S3Writer(SingleUseWriter):
    def __init__(self, backend: S3Backend, path: str, key: str) -> None:
        super().__init__(path)
        self._backend = backend
        self._s3 = backend.s3
        self._key = key
        self._staging = staging_key(key)
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []  # PartNumber, ETag and Size of every part in order
        self._buffer = bytearray()
        self._size = 0
        self._in_flight: list[asyncio.Task[None]] = []

    @classmethod
    async def open(cls, backend: S3Backend, path: str, key: str, append: bool) -> S3Writer:
        writer = cls(backend, path, key)
        if append:
            staged = await writer._s3.maybe("get_object", path, Key=writer._staging)
            if staged is not None:
                await writer._resume(staged)
                return writer
        else:  # start afresh: what an earlier writer staged is discarded
            head = await writer._s3.maybe("head_object", path, Key=writer._staging)
            if head is not None:
                await writer._abort(head["Metadata"].get("upload-id"))
        await writer._save_staging()
        return writer

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes) -> None:
        self._check_open()
        self._buffer += data
        self._size += len(data)
        chunksize = self._backend.settings.chunksize
        while len(self._buffer) >= chunksize:
            part = bytes(self._buffer[:chunksize])
            del self._buffer[:chunksize]
            await self._start_part(part)

    async def close(self) -> None:
        self._finish()
        await self._drain()
        await self._save_staging()

    async def commit(self) -> None:
        self._finish()
        await self._drain()
        if await self._s3.maybe("head_object", self._path, Key=self._staging) is None:
            await self._abort(self._upload_id)
            raise PathNotFound(self._path)
        await self._backend.check_writable(self._path, self._key)
        if self._upload_id is None:
            args = self._backend.settings.put_args
            await self._s3.call("put_object", self._path, Key=self._key, Body=bytes(self._buffer), **args)
        else:
            if self._buffer:
                await self._start_part(bytes(self._buffer))
                await self._drain()
            await self._complete()
        await self._s3.call("delete_object", self._path, Key=self._staging)

    async def cancel(self) -> None:
        self._finish()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._in_flight.clear()
        await self._abort(self._upload_id)
        await self._s3.maybe("delete_object", self._path, Key=self._staging)

    # --- state ---

    async def _resume(self, staged: dict[str, Any]) -> None:
        try:
            tail: bytes = await self._s3.run(staged["Body"].read)
        finally:
            staged["Body"].close()
        metadata = staged["Metadata"]
        self._upload_id = metadata.get("upload-id") or None
        count, size = int(metadata.get("parts", 0)), int(metadata.get("size", len(tail)))
        if self._upload_id is not None:
            self._parts = (await self._list_parts())[:count]
        if len(self._parts) != count or sum(part["Size"] for part in self._parts) + len(tail) != size:
            raise StorageError(self._path, "the staged multipart upload does not match its staging object")
        self._buffer = bytearray(tail)
        self._size = size

    async def _list_parts(self) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        marker: dict[str, int] = {}
        while True:
            page = await self._s3.call("list_parts", self._path, Key=self._key, UploadId=self._upload_id, **marker)
            parts += [{"PartNumber": p["PartNumber"], "ETag": p["ETag"], "Size": p["Size"]} for p in page["Parts"]]
            if not page.get("IsTruncated"):
                return sorted(parts, key=lambda part: int(part["PartNumber"]))
            marker = {"PartNumberMarker": page["NextPartNumberMarker"]}

    async def _save_staging(self) -> None:
        metadata = {"upload-id": self._upload_id or "", "parts": str(len(self._parts)), "size": str(self._size)}
        await self._s3.call("put_object", self._path, Key=self._staging, Body=bytes(self._buffer), Metadata=metadata)

    # --- parts ---

    async def _start_part(self, data: bytes) -> None:
        if self._upload_id is None:
            args = self._backend.settings.put_args
            created = await self._s3.call("create_multipart_upload", self._path, Key=self._key, **args)
            self._upload_id = created["UploadId"]
        if len(self._in_flight) >= _PARTS_IN_FLIGHT:
            await self._in_flight.pop(0)
        part = {"PartNumber": len(self._parts) + 1, "ETag": "", "Size": len(data)}
        self._parts.append(part)
        self._in_flight.append(asyncio.ensure_future(self._upload_part(part, data)))

    async def _upload_part(self, part: dict[str, Any], data: bytes) -> None:
        number, upload_id = part["PartNumber"], self._upload_id
        result = await self._s3.call(
            "upload_part", self._path, Key=self._key, UploadId=upload_id, PartNumber=number, Body=data
        )
        part["ETag"] = result["ETag"]

    async def _drain(self) -> None:
        in_flight, self._in_flight = self._in_flight, []
        results = await asyncio.gather(*in_flight, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _complete(self) -> None:
        parts = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in self._parts]
        try:
            await self._s3.call(
                "complete_multipart_upload",
                self._path,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},
            )
        except PathNotFound:
            # a retried complete whose first attempt succeeded finds no upload: the object tells whether it did
            head = await self._s3.maybe("head_object", self._path, Key=self._key)
            if head is None or head.get("ETag") != multipart_etag(self._parts):
                raise

    async def _abort(self, upload_id: str | None) -> None:
        if upload_id:
            await self._s3.maybe("abort_multipart_upload", self._path, Key=self._key, UploadId=upload_id)


def multipart_etag(parts: list[dict[str, Any]]) -> str:
    """The ETag S3 gives an object completed from these parts: md5 of the parts' md5s, dash, part count."""
    digests = b"".join(bytes.fromhex(str(part["ETag"]).strip('"')) for part in parts)
    return f'"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"'


async def multipart_copy(backend: S3Backend, path: str, source_key: str, dest_key: str, size: int) -> None:
    """Copy an object too large for one CopyObject (above ``multipartcopythresholdsize``) in parallel part copies."""
    settings, s3 = backend.settings, backend.s3
    created = await s3.call("create_multipart_upload", path, Key=dest_key, **settings.put_args)
    upload_id = created["UploadId"]
    chunk = max(settings.copy_chunksize, -(-size // 10000))  # S3 allows at most 10,000 parts
    limit = asyncio.Semaphore(settings.copy_concurrency)
    source = {"Bucket": settings.bucket, "Key": source_key}

    async def copy_part(number: int, start: int) -> dict[str, Any]:
        end = min(start + chunk, size) - 1
        async with limit:
            result = await s3.call(
                "upload_part_copy",
                path,
                Key=dest_key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource=source,
                CopySourceRange=f"bytes={start}-{end}",
            )
        return {"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]}

    try:
        async with asyncio.TaskGroup() as group:  # one failed part cancels the others
            tasks = [group.create_task(copy_part(i + 1, start)) for i, start in enumerate(range(0, size, chunk))]
        multipart = {"Parts": [task.result() for task in tasks]}
        await s3.call("complete_multipart_upload", path, Key=dest_key, UploadId=upload_id, MultipartUpload=multipart)
    except BaseException:
        await s3.maybe("abort_multipart_upload", path, Key=dest_key, UploadId=upload_id)
        raise
