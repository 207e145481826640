"""S3BlobStore specifics on moto's server: prefixes, URLs, multipart etags, errors."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import boto3
import pytest

from agentfn.adapters.aws.s3 import PART_SIZE, S3BlobStore
from agentfn.errors import ConfigError, NotFound, PreconditionFailed, UserError
from tests.support.emulators.aws import ensure_moto


@pytest.fixture
def bucket() -> Iterator[str]:
    ensure_moto()
    name = f"unit-{uuid.uuid4().hex[:16]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    yield name
    for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)


def test_prefixes_isolate_stores_in_one_bucket(bucket: str) -> None:
    a = S3BlobStore.from_url(f"s3://{bucket}/tenant/a")
    b = S3BlobStore.from_url(f"s3://{bucket}/tenant/b/")
    whole = S3BlobStore(bucket)
    a.put("k", b"a")
    b.put("k", b"b")
    assert (a.get("k").data, b.get("k").data) == (b"a", b"b")
    assert a.list().keys == ["k"]
    assert whole.list().keys == ["tenant/a/k", "tenant/b/k"]
    assert whole.list(cursor="tenant/a/k").keys == ["tenant/b/k"]
    assert repr(a) == f"S3BlobStore(bucket={bucket!r}, prefix='tenant/a/')"


def test_etags_with_or_without_quotes(bucket: str) -> None:
    store = S3BlobStore(bucket)
    etag = store.put("x", b"1")
    assert etag.startswith('"') and etag.endswith('"')
    new = store.put_if_match("x", b"2", etag.strip('"'))
    with pytest.raises(PreconditionFailed, match="etag mismatch"):
        store.put_if_match("x", b"3", etag)
    with pytest.raises(PreconditionFailed, match="does not exist"):
        store.put_if_match("missing", b"3", new)
    with pytest.raises(PreconditionFailed, match="already exists"):
        store.put_if_absent("x", b"3")


def test_upload_small_and_multipart_report_the_stored_etag(bucket: str) -> None:
    store = S3BlobStore(bucket)
    small = store.upload("small", io.BytesIO(b"hello"))
    assert small == store.get("small").etag
    empty = store.upload("empty", io.BytesIO(b""))
    assert (store.get("empty").data, store.get("empty").etag) == (b"", empty)
    data = bytes(range(256)) * ((PART_SIZE + 12345) // 256)
    big = store.upload("big", io.BytesIO(data))
    assert big.endswith('-2"')  # two parts: S3's multipart etag
    sink = io.BytesIO()
    assert store.download("big", sink) == big
    assert sink.getvalue() == data
    assert boto3.client("s3").list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_missing_bucket_is_a_config_error() -> None:
    ensure_moto()
    store = S3BlobStore(f"unit-missing-{uuid.uuid4().hex[:8]}")
    with pytest.raises(ConfigError) as info:
        store.get("x")
    assert info.value.field == "bucket"
    with pytest.raises(ConfigError):
        store.put("x", b"")


def test_key_length_counts_the_prefix(bucket: str) -> None:
    store = S3BlobStore(bucket, "p" * 20)
    store.put("k" * 1003, b"")  # 20 + "/" + 1003 = 1024 bytes: S3's limit
    with pytest.raises(UserError) as info:
        store.put("k" * 1004, b"")
    assert info.value.field == "key"
    with pytest.raises(NotFound):
        store.get("k" * 1002)


def test_data_must_be_bytes(bucket: str) -> None:
    store = S3BlobStore(bucket)
    with pytest.raises(UserError) as info:
        store.put("x", "text")  # type: ignore[arg-type]
    assert info.value.field == "data"
    assert store.get(store.put("y", bytearray(b"ok")) and "y").data == b"ok"


@pytest.mark.parametrize(
    "url",
    ["s3://", "gs://bucket", "s3://bucket?x=1", "s3://bucket/a/../b", "s3://bucket#f"],
)
def test_bad_urls(url: str) -> None:
    ensure_moto()
    with pytest.raises(ConfigError) as info:
        S3BlobStore.from_url(url)
    assert info.value.field == "url"
