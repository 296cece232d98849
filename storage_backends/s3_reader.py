"""Reading an S3 object as a stream of chunks, resumed with ``Range`` when the connection drops mid-body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError

from storage_backends.errors import InvalidOffset, StorageError
from storage_backends.s3_client import S3Calls, error_code, translate

RESUME_ATTEMPTS = 5
_BODY_ERRORS = (BotoCoreError, HTTPError, OSError)


async def read_object(
    s3: S3Calls, path: str, key: str, offset: int, length: int | None, chunk_size: int
) -> AsyncIterator[bytes]:
    """``length`` bytes (all when None) of the object from ``offset``, in chunks of at most ``chunk_size``."""
    end = None if length is None else offset + length  # exclusive
    position, etag, failures = offset, None, 0
    if length == 0:  # nothing to read, but the object and the offset must still be valid
        await _check_offset(s3, path, key, offset)
        return
    while end is None or position < end:
        response = await _open(s3, path, key, position, end, etag, offset)
        if response is None:
            return
        etag = etag or response.get("ETag")
        body = response["Body"]
        try:
            while end is None or position < end:
                wanted = chunk_size if end is None else min(chunk_size, end - position)
                chunk: bytes = await s3.run(body.read, wanted)
                if not chunk:
                    return
                position += len(chunk)
                failures = 0
                yield chunk
        except _BODY_ERRORS as exc:
            failures += 1
            if failures >= RESUME_ATTEMPTS:
                raise StorageError(path, f"S3 read failed at byte {position}: {type(exc).__name__}") from exc
            await asyncio.sleep(0.1 * 2**failures)
        finally:
            body.close()


async def _open(
    s3: S3Calls, path: str, key: str, position: int, end: int | None, etag: str | None, offset: int
) -> dict[str, Any] | None:
    """GET from ``position``, or None when there is nothing left to read (at or past the end of the object)."""
    args: dict[str, Any] = {"Key": key}
    if position or end is not None:
        args["Range"] = f"bytes={position}-" if end is None else f"bytes={position}-{end - 1}"
    if etag is not None:
        args["IfMatch"] = etag  # a resumed read must not splice two versions of an object
    try:
        response: dict[str, Any] = await s3.run(s3.client.get_object, Bucket=s3.bucket, **args)
    except ClientError as exc:
        if error_code(exc) != "InvalidRange":
            raise translate(exc, path, "get_object") from exc
        await _check_offset(s3, path, key, offset)
        return None
    except BotoCoreError as exc:
        raise translate(exc, path, "get_object") from exc
    return response


async def _check_offset(s3: S3Calls, path: str, key: str, offset: int) -> None:
    head = await s3.call("head_object", path, Key=key)
    if offset > head["ContentLength"]:
        raise InvalidOffset(path, f"offset {offset} is past the end ({head['ContentLength']} bytes)")
