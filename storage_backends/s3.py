"""Storage in an S3 bucket (AWS, MinIO, or any S3-compatible store), configured with distribution's ``storage.s3``.

A path ``a/b/c`` is the key ``<rootdirectory>/a/b/c``; directories are the key prefixes that hold objects. The
backend keeps the filesystem's rules: a key is never both a file and a directory, and nothing a writer stages is
visible before ``commit``.

A writer is an S3 multipart upload on its final key (invisible until completed) plus a small hidden object beside
it, ``<dir>/.<name>.partial``, that holds the bytes short of a part and, in its metadata, the multipart upload's
id, part count and size. ``close`` writes that object; a later writer (any process) continues from it. Names of
that shape are hidden from ``list`` and ``walk`` and refused in paths.
"""

from __future__ import annotations

import asyncio
import builtins
import re
from collections.abc import AsyncIterator
from typing import Any

from storage_backends.base import CHUNK_SIZE, FileInfo, FileWriter, clean_path
from storage_backends.errors import InvalidOffset, InvalidPath, PathNotFound, StorageError
from storage_backends.s3_client import PARAMETERS as PARAMETERS  # storage.s3, declared beside the client
from storage_backends.s3_client import S3Calls, S3Settings, endpoint_url, make_client
from storage_backends.s3_reader import read_object
from storage_backends.s3_writer import S3Writer, multipart_copy

_STAGING_NAME = re.compile(r"\..+\.partial")
PRESIGN_SECONDS = 20 * 60  # distribution's expiry for redirect URLs
_KNOWN_DIRS_LIMIT = 4096


class S3Backend:
    name = "s3"
    redirects = True

    def __init__(self, **params: Any) -> None:
        """``params``: every key of ``PARAMETERS``, typed (``storage_backends.create_backend`` reads them)."""
        root = str(params["rootdirectory"] or "").strip("/")
        self.settings = S3Settings(
            bucket=params["bucket"],
            root=f"{root}/" if root else "",
            chunksize=params["chunksize"],
            copy_threshold=params["multipartcopythresholdsize"],
            copy_chunksize=params["multipartcopychunksize"],
            copy_concurrency=params["multipartcopymaxconcurrency"],
            put_args=_put_args(params["encrypt"], params["keyid"], params["storageclass"], params["objectacl"]),
        )
        client = make_client(
            region=params["region"],
            endpoint=endpoint_url(params["regionendpoint"], params["secure"]),
            accesskey=params["accesskey"],
            secretkey=params["secretkey"],
            sessiontoken=params["sessiontoken"],
            verify=not params["skipverify"],
            pathstyle=params["forcepathstyle"],
            v4auth=params["v4auth"],
            accelerate=params["accelerate"],
            dualstack=params["usedualstack"],
        )
        self.s3 = S3Calls(client, self.settings.bucket)
        self._known_dirs: dict[str, None] = {}  # keys known to be directories: their files need no ancestor check

    # --- paths ---

    def _key(self, path: str) -> str:
        return self.settings.root + path

    def _file_key(self, path: str) -> tuple[str, str]:
        cleaned = clean_path(path)
        if any(_STAGING_NAME.fullmatch(part) for part in cleaned.split("/")):
            raise InvalidPath(cleaned, "names of the form '.<name>.partial' are reserved")
        return cleaned, self._key(cleaned)

    def _dir_prefix(self, path: str) -> tuple[str, str]:
        if not path:
            return "", self.settings.root
        cleaned, key = self._file_key(path)
        return cleaned, key + "/"

    def _path_of(self, key: str) -> str:
        return key[len(self.settings.root) :]

    # --- the file/directory rule ---

    async def _is_dir(self, key: str) -> bool:
        found = await self.s3.call("list_objects_v2", key, Prefix=key + "/", MaxKeys=1)
        return bool(found.get("KeyCount"))

    async def check_writable(self, path: str, key: str, *, itself: bool = True) -> None:
        """Refuse a file where a directory is (unless not ``itself``), or below a file (StorageError), as a
        filesystem would."""
        parents = [self._key(path[:i]) for i, char in enumerate(path) if char == "/"]
        unknown = [parent for parent in parents if parent not in self._known_dirs]
        found = await asyncio.gather(self._is_dir(key) if itself else _false(), *map(self._exists, unknown))
        if found[0]:
            raise StorageError(path, "is a directory")
        if any(found[1:]):
            raise StorageError(path, "a parent path is a file")
        for parent in unknown:
            self._remember_dir(parent)

    def _remember_dir(self, key: str) -> None:
        if len(self._known_dirs) >= _KNOWN_DIRS_LIMIT:
            self._known_dirs.pop(next(iter(self._known_dirs)))
        self._known_dirs[key] = None

    def _forget_dirs(self, prefix: str) -> None:
        for key in [key for key in self._known_dirs if key == prefix.rstrip("/") or key.startswith(prefix)]:
            del self._known_dirs[key]

    async def _exists(self, key: str) -> bool:
        return await self.s3.maybe("head_object", key, Key=key) is not None

    # --- the protocol ---

    async def get_content(self, path: str) -> bytes:
        cleaned, key = self._file_key(path)
        response = await self.s3.call("get_object", cleaned, Key=key)
        body = response["Body"]
        try:
            data: bytes = await self.s3.run(body.read)
        finally:
            body.close()
        return data

    async def put_content(self, path: str, data: bytes) -> None:
        cleaned, key = self._file_key(path)
        await self.check_writable(cleaned, key)
        await self.s3.call("put_object", cleaned, Key=key, Body=data, **self.settings.put_args)

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        cleaned, key = self._file_key(path)
        if offset < 0 or (length is not None and length < 0):
            raise InvalidOffset(cleaned, f"negative offset {offset} or length {length}")
        return read_object(self.s3, cleaned, key, offset, length, CHUNK_SIZE)

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        cleaned, key = self._file_key(path)
        await self.check_writable(cleaned, key, itself=False)  # only its commit must not land on a directory
        return await S3Writer.open(self, cleaned, key, append)

    async def stat(self, path: str) -> FileInfo:
        cleaned, key = self._file_key(path)
        head = await self.s3.maybe("head_object", cleaned, Key=key)
        if head is not None:
            return FileInfo(cleaned, head["ContentLength"], False, head["LastModified"].timestamp())
        found = await self.s3.call("list_objects_v2", cleaned, Prefix=key + "/", MaxKeys=1)
        if not found.get("KeyCount"):
            raise PathNotFound(cleaned)
        return FileInfo(cleaned, 0, True, found["Contents"][0]["LastModified"].timestamp())

    async def list(self, path: str) -> builtins.list[str]:
        cleaned, prefix = self._dir_prefix(path)
        children: builtins.list[str] = []
        seen_any = False
        async for page in self._pages(cleaned, Prefix=prefix, Delimiter="/"):
            names = [entry["Prefix"].rstrip("/") for entry in page.get("CommonPrefixes", [])]
            names += [entry["Key"] for entry in page.get("Contents", [])]
            seen_any = seen_any or bool(names)
            children += [self._path_of(name) for name in names if not _is_staging(name)]
        if not seen_any and cleaned:
            raise PathNotFound(cleaned)
        return sorted(children)

    async def move(self, source: str, dest: str) -> None:
        source_path, source_key = self._file_key(source)
        dest_path, dest_key = self._file_key(dest)
        head = await self.s3.maybe("head_object", source_path, Key=source_key)
        if head is None:
            if await self._is_dir(source_key):
                raise StorageError(source_path, "is a directory; only files can be moved")
            raise PathNotFound(source_path)
        if source_key == dest_key:
            return
        await self.check_writable(dest_path, dest_key)
        await self.copy(source_path, source_key, dest_key, head["ContentLength"])
        await self.s3.call("delete_object", source_path, Key=source_key)

    async def copy(self, path: str, source_key: str, dest_key: str, size: int) -> None:
        if size <= self.settings.copy_threshold:
            source = {"Bucket": self.settings.bucket, "Key": source_key}
            await self.s3.call("copy_object", path, Key=dest_key, CopySource=source, **self.settings.put_args)
            return
        await multipart_copy(self, path, source_key, dest_key, size)

    async def delete(self, path: str) -> None:
        cleaned, key = self._file_key(path)
        if await self._exists(key):
            await self.s3.call("delete_object", cleaned, Key=key)
            return
        prefix = key + "/"
        self._forget_dirs(prefix)
        deleted = await self._delete_prefix(cleaned, prefix)
        aborted = await self.abort_uploads(cleaned, prefix)
        if not deleted and not aborted:
            raise PathNotFound(cleaned)

    async def _delete_prefix(self, path: str, prefix: str) -> int:
        count = 0
        async for page in self._pages(path, Prefix=prefix):
            keys = [{"Key": entry["Key"]} for entry in page.get("Contents", [])]
            if keys:
                result = await self.s3.call("delete_objects", path, Delete={"Objects": keys, "Quiet": True})
                if result.get("Errors"):
                    raise StorageError(path, f"S3 delete_objects failed: {result['Errors'][0].get('Code')}")
                count += len(keys)
        return count

    async def abort_uploads(self, path: str, prefix: str) -> int:
        """Abort every unfinished multipart upload whose key starts with ``prefix``; how many there were."""
        count = 0
        markers: dict[str, str] = {}
        while True:
            page = await self.s3.call("list_multipart_uploads", path, Prefix=prefix, **markers)
            for upload in page.get("Uploads", []):
                await self.s3.maybe("abort_multipart_upload", path, Key=upload["Key"], UploadId=upload["UploadId"])
                count += 1
            if not page.get("IsTruncated"):
                return count
            markers = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        _, key = self._file_key(path)
        operation = {"GET": "get_object", "HEAD": "head_object"}.get(method)
        if operation is None:
            return None
        params = {"Bucket": self.settings.bucket, "Key": key}
        url: str = self.s3.client.generate_presigned_url(operation, Params=params, ExpiresIn=PRESIGN_SECONDS)
        return url

    async def walk(self, path: str) -> AsyncIterator[FileInfo]:
        cleaned, prefix = self._dir_prefix(path)
        files: builtins.list[FileInfo] = []
        seen_any = False
        async for page in self._pages(cleaned, Prefix=prefix):
            for entry in page.get("Contents", []):
                seen_any = True
                if not _is_staging(entry["Key"]):
                    mtime = entry["LastModified"].timestamp()
                    files.append(FileInfo(self._path_of(entry["Key"]), entry["Size"], False, mtime))
        if not seen_any and cleaned:
            raise PathNotFound(cleaned)
        # S3 lists in byte order ("b.txt" before "b/x"); a walk goes depth first in sorted order of each level
        for info in sorted(files, key=lambda info: info.path.split("/")):
            yield info

    async def close(self) -> None:
        self.s3.shutdown()

    async def _pages(self, path: str, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        token: dict[str, str] = {}
        while True:
            page = await self.s3.call("list_objects_v2", path, **kwargs, **token)
            yield page
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}


async def _false() -> bool:
    return False


def _is_staging(key: str) -> bool:
    return _STAGING_NAME.fullmatch(key.rsplit("/", 1)[-1]) is not None


def _put_args(encrypt: bool, keyid: str | None, storageclass: str, objectacl: str | None) -> dict[str, str]:
    args: dict[str, str] = {}
    if encrypt:
        args["ServerSideEncryption"] = "aws:kms" if keyid else "AES256"
        if keyid:
            args["SSEKMSKeyId"] = keyid
    if storageclass and storageclass.upper() != "NONE":
        args["StorageClass"] = storageclass.upper()
    if objectacl:
        args["ACL"] = objectacl
    return args
