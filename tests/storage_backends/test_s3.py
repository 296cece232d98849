"""What only the S3 backend does, beyond the shared suite: parts, multipart copy, presigned URLs, parameters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from storage_backends import create_backend
from storage_backends.s3 import S3Backend
from storage_backends.s3_writer import multipart_etag
from tests.s3server import MotoServer, fetch

MIB = 1024 * 1024
DATA = bytes(range(256)) * (12 * MIB // 256)  # 12 MiB: two 5 MiB parts and a 2 MiB tail


def make(moto: MotoServer, bucket: str, **extra: Any) -> S3Backend:
    backend = create_backend("s3", moto.driver_params(bucket, **extra))
    assert isinstance(backend, S3Backend)
    return backend


@pytest.fixture
async def bucket(moto_s3: MotoServer) -> AsyncIterator[str]:
    name = moto_s3.create_bucket()
    yield name
    assert moto_s3.leftovers(name) == [], "staging objects or multipart uploads left in the bucket"


def uploads(moto: MotoServer, bucket: str) -> list[dict[str, Any]]:
    return list(moto.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []))


async def test_a_closed_writer_continues_in_another_backend_instance(moto_s3: MotoServer, bucket: str) -> None:
    first = make(moto_s3, bucket, chunksize=5 * MIB, rootdirectory="root")
    writer = await first.writer("up/data")
    await writer.write(DATA[: 7 * MIB])
    await writer.close()
    (upload,) = uploads(moto_s3, bucket)
    parts = moto_s3.client().list_parts(Bucket=bucket, Key="root/up/data", UploadId=upload["UploadId"])["Parts"]
    assert [part["Size"] for part in parts] == [5 * MIB]  # the other 2 MiB wait in the staging object

    second = make(moto_s3, bucket, chunksize=5 * MIB, rootdirectory="root")  # another worker or replica
    writer = await second.writer("up/data", append=True)
    assert writer.size == 7 * MIB
    await writer.write(DATA[7 * MIB :])
    await writer.commit()
    head = moto_s3.client().head_object(Bucket=bucket, Key="root/up/data")
    assert head["ETag"].endswith('-3"') and head["ContentLength"] == len(DATA)
    assert await second.get_content("up/data") == DATA
    assert uploads(moto_s3, bucket) == []
    await second.delete("up")
    await first.close()
    await second.close()


async def test_the_etag_of_a_completed_upload_is_predicted(moto_s3: MotoServer, bucket: str) -> None:
    # a retried CompleteMultipartUpload whose first attempt succeeded is recognised by this ETag
    backend = make(moto_s3, bucket, chunksize=5 * MIB)
    writer = await backend.writer("blob")
    await writer.write(DATA)
    await writer.commit()
    head = moto_s3.client().head_object(Bucket=bucket, Key="blob")
    assert head["ETag"] == multipart_etag(writer._parts)  # noqa: SLF001 - the parts the writer uploaded
    await backend.delete("blob")
    await backend.close()


async def test_a_move_above_the_threshold_is_a_multipart_copy(moto_s3: MotoServer, bucket: str) -> None:
    backend = make(moto_s3, bucket, multipartcopythresholdsize=5 * MIB, multipartcopychunksize=5 * MIB)
    await backend.put_content("uploads/x/data", DATA)
    await backend.move("uploads/x/data", "blobs/ab/data")
    head = moto_s3.client().head_object(Bucket=bucket, Key="blobs/ab/data")
    assert head["ETag"].endswith('-3"'), "12 MiB in 5 MiB copy parts"
    assert await backend.get_content("blobs/ab/data") == DATA
    assert [info.path async for info in backend.walk("")] == ["blobs/ab/data"]
    await backend.delete("blobs")
    await backend.close()


async def test_redirect_urls_are_presigned_for_get_and_head(moto_s3: MotoServer, bucket: str) -> None:
    backend = make(moto_s3, bucket, rootdirectory="/registry/")
    await backend.put_content("blob", b"direct")
    get_url = await backend.redirect_url("blob")
    head_url = await backend.redirect_url("blob", "HEAD")
    assert get_url is not None and head_url is not None
    assert get_url.startswith(f"{moto_s3.endpoint}/{bucket}/registry/blob?")
    assert (await fetch(get_url)).content == b"direct"
    assert (await fetch(head_url, "HEAD")).headers["content-length"] == "6"
    assert await backend.redirect_url("blob", "DELETE") is None
    await backend.delete("blob")
    await backend.close()


def test_parameters_are_distributions_and_may_be_strings(moto_s3: MotoServer) -> None:
    params = moto_s3.driver_params("bucket", chunksize="5242880", secure="false", forcepathstyle="true")
    backend = create_backend("s3", params | {"regionendpoint": "127.0.0.1:9", "v4auth": "true", "encrypt": "true"})
    assert isinstance(backend, S3Backend)
    assert backend.settings.chunksize == 5 * MIB
    assert backend.settings.put_args == {"ServerSideEncryption": "AES256", "StorageClass": "STANDARD"}
    assert backend.s3.client.meta.endpoint_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("key", "value"),
    [("chunksize", 5 * MIB - 1), ("chunksize", "ten"), ("secure", "maybe"), ("multipartcopymaxconcurrency", 0)],
)
def test_bad_parameters_name_the_key(moto_s3: MotoServer, key: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"storage.s3.{key}"):
        create_backend("s3", moto_s3.driver_params("bucket", **{key: value}))


def test_without_keys_the_default_credential_chain_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-the-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    backend = create_backend("s3", {"bucket": "b", "region": "eu-west-1"})
    assert isinstance(backend, S3Backend)
    assert backend.s3.client._request_signer._credentials.access_key == "from-the-environment"  # noqa: SLF001
    assert backend.s3.client.meta.region_name == "eu-west-1"


async def test_a_fresh_writer_aborts_the_multipart_upload_an_earlier_one_staged(
    moto_s3: MotoServer, bucket: str
) -> None:
    backend = make(moto_s3, bucket, chunksize=5 * MIB)
    writer = await backend.writer("up/data")
    await writer.write(DATA[: 6 * MIB])
    await writer.close()
    assert len(uploads(moto_s3, bucket)) == 1
    writer = await backend.writer("up/data")  # not appending: the staged bytes and their parts are discarded
    assert writer.size == 0
    assert uploads(moto_s3, bucket) == []
    await writer.write(b"fresh")
    await writer.commit()
    assert await backend.get_content("up/data") == b"fresh"
    await backend.delete("up")
    await backend.close()
