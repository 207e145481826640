"""GcsBlobStore specifics beyond the BlobStore contract (tests/contract runs that on it too)."""

from __future__ import annotations

import contextlib
import io
import pickle
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from agentfn.adapters.gcp.gcs import DEFAULT_CHUNK_SIZE, GcsBlobStore, _ChunkReader
from agentfn.errors import ConfigError, NotFound, PreconditionFailed, UserError
from tests.support.emulators.gcp import gcs_client


@pytest.fixture
def bucket() -> Iterator[str]:
    client = gcs_client()
    name = f"agentfn-unit-{uuid.uuid4().hex[:12]}"
    client.create_bucket(name)
    yield name
    for blob in client.list_blobs(name):
        with contextlib.suppress(gexc.NotFound):
            blob.delete()
    client.bucket(name).delete()


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("gs://my-bucket", "my-bucket", ""),
        ("gs://my-bucket/", "my-bucket", ""),
        ("gs://my-bucket/agentfn", "my-bucket", "agentfn/"),
        ("gs://my.bucket_1/a/b/", "my.bucket_1", "a/b/"),
    ],
)
def test_from_url(url: str, bucket: str, prefix: str) -> None:
    store = GcsBlobStore.from_url(url)
    assert (store.bucket_name, store.prefix) == (bucket, prefix)
    assert repr(store) == f"GcsBlobStore(url='gs://{bucket}/{prefix}')"


@pytest.mark.parametrize(
    "url",
    [
        "s3://bucket",
        "gs://",
        "gs:///prefix",
        "gs://Upper-Case",
        "gs://ab",
        "gs://-bucket",
        "gs://bucket/../up",
        "gs://bucket/a//b",
        "gs://bucket?x=1",
        "gs://bucket#frag",
    ],
)
def test_bad_urls_name_the_url(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        GcsBlobStore.from_url(url)
    assert info.value.field == "url"


def test_chunk_size_must_suit_resumable_uploads() -> None:
    for bad in [0, -1, 1000, 256 * 1024 + 1, True]:
        with pytest.raises(ConfigError) as info:
            GcsBlobStore("bucket-x", chunk_size=bad)
        assert info.value.field == "chunk_size"
    assert DEFAULT_CHUNK_SIZE % (256 * 1024) == 0
    GcsBlobStore("bucket-x", chunk_size=256 * 1024)


def test_pickles_without_its_client(bucket: str) -> None:
    store = GcsBlobStore(bucket, "p")
    store.put("k", b"v")
    clone = pickle.loads(pickle.dumps(store))
    assert clone.get("k").data == b"v"


# --------------------------------------------------------------------------- etags


def test_etag_is_the_generation_and_changes_on_identical_rewrites(bucket: str) -> None:
    store = GcsBlobStore(bucket)
    first = store.put("k", b"same")
    second = store.put("k", b"same")
    assert first.isdigit() and second.isdigit() and first != second
    assert store.get("k").etag == second
    gen = gcs_client().bucket(bucket).get_blob("k").generation
    assert str(gen) == second


def test_put_if_match_accepts_quoted_etags_and_rejects_foreign_ones(bucket: str) -> None:
    store = GcsBlobStore(bucket)
    etag = store.put("k", b"1")
    etag = store.put_if_match("k", b"2", f'"{etag}"')
    etag = store.put_if_match("k", b"3", f'W/"{etag}"')
    assert store.get("k").data == b"3"
    # "0" would mean "only if absent" to Cloud Storage; an md5-style etag can never match.
    for foreign in ["0", '"0"', "", "abc", "7MvIfktc4v4oMI/Z8qe68w==", "-5"]:
        with pytest.raises(PreconditionFailed):
            store.put_if_match("k", b"4", foreign)
    with pytest.raises(UserError) as info:
        store.put_if_match("k", b"4", 123)  # type: ignore[arg-type]
    assert info.value.field == "etag"
    assert store.get("k").data == b"3"


# --------------------------------------------------------------------------- prefix and keys


def test_prefix_isolates_stores_sharing_a_bucket(bucket: str) -> None:
    a = GcsBlobStore(bucket, "tenant-a")
    b = GcsBlobStore(bucket, "tenant-a-other")
    a.put("runs/1", b"a")
    b.put("runs/1", b"b")
    assert a.list().keys == ["runs/1"]
    assert b.list("runs/").keys == ["runs/1"]
    assert a.get("runs/1").data == b"a"
    objects = sorted(blob.name for blob in gcs_client().list_blobs(bucket))
    assert objects == ["tenant-a-other/runs/1", "tenant-a/runs/1"]
    a.delete("runs/1")
    assert b.get("runs/1").data == b"b"


def test_cursor_before_the_prefix_and_odd_cursors(bucket: str) -> None:
    store = GcsBlobStore(bucket, "p")
    for key in ["a/1", "a/2", "b/1"]:
        store.put(key, b"")
    assert store.list("a/", cursor="0").keys == ["a/1", "a/2"]
    assert store.list("a/", cursor="a/1").keys == ["a/2"]
    assert store.list("a/", cursor="a/1x").keys == ["a/2"]
    assert store.list("a/", cursor="zzz").keys == []
    assert store.list(cursor="a/2").keys == ["b/1"]
    with pytest.raises(UserError) as info:
        store.list(cursor=5)  # type: ignore[arg-type]
    assert info.value.field == "cursor"
    with pytest.raises(UserError) as info:
        store.list(limit=0)
    assert info.value.field == "limit"


def test_key_rules_specific_to_cloud_storage(bucket: str) -> None:
    store = GcsBlobStore(bucket, "p" * 20)
    for bad in ["line\nbreak", "cr\rhere"]:
        with pytest.raises(UserError) as info:
            store.put(bad, b"")
        assert info.value.field == "key"
    with pytest.raises(UserError, match="at most 1024 bytes") as info:
        store.put("k" * 1010, b"")
    assert info.value.field == "key"
    store.put("ü/ключ/キー", b"unicode")
    assert store.list().keys == ["ü/ключ/キー"]
    with pytest.raises(UserError) as info:
        store.put("k", "text")  # type: ignore[arg-type]
    assert info.value.field == "data"


def test_missing_bucket_is_not_found() -> None:
    gcs_client()
    store = GcsBlobStore(f"agentfn-missing-{uuid.uuid4().hex[:8]}")
    with pytest.raises(NotFound):
        store.get("k")


# --------------------------------------------------------------------------- streaming


def test_upload_returns_the_generation_download_reads(bucket: str) -> None:
    store = GcsBlobStore(bucket, chunk_size=256 * 1024)
    data = bytes(range(256)) * 4099  # a little over four chunks, not a multiple
    etag = store.upload("big", io.BytesIO(data))
    sink = io.BytesIO()
    assert store.download("big", sink) == etag == store.get("big").etag
    assert sink.getvalue() == data
    assert store.upload("empty", io.BytesIO(b"")) == store.get("empty").etag
    assert store.get("empty").data == b""


class Dribble(io.RawIOBase):
    """A source that hands out at most 1000 bytes per read, like a socket."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), 1000, len(self.data))
        buffer[:n] = self.data[:n]
        self.data = self.data[n:]
        return n


def test_upload_from_a_source_with_short_reads(bucket: str) -> None:
    # A short read means "last chunk" to a resumable upload: the reader must fill chunks.
    store = GcsBlobStore(bucket, chunk_size=256 * 1024)
    data = b"0123456789abcdef" * 40_000
    store.upload("dribbled", Dribble(data))  # type: ignore[arg-type]
    assert store.get("dribbled").data == data


def test_chunk_reader_seeks_only_within_the_last_chunk() -> None:
    reader = _ChunkReader(Dribble(b"abcdefghij"))  # type: ignore[arg-type]
    assert reader.tell() == 0
    assert reader.read(4) == b"abcd"
    assert reader.read(4) == b"efgh"
    assert reader.tell() == 8
    # The service committed only part of the last chunk: resend from there.
    assert reader.seek(6) == 6
    assert reader.read(3) == b"ghi"
    assert reader.read(10) == b"j"
    assert reader.read(10) == b""
    with pytest.raises(io.UnsupportedOperation):
        reader.seek(0)
    with pytest.raises(io.UnsupportedOperation):
        reader.seek(0, io.SEEK_END)


def test_download_of_a_blob_replaced_mid_stream_fails_cleanly(bucket: str) -> None:
    store = GcsBlobStore(bucket, chunk_size=256 * 1024)
    store.put("k", b"x" * (600 * 1024))

    class Sabotage(io.BytesIO):
        """Overwrites the object after the first chunk arrives."""

        def write(self, data: Any) -> int:
            if self.tell() == 0:
                store.put("k", b"y" * (600 * 1024))
            return super().write(data)

    with pytest.raises(PreconditionFailed, match="changed while being downloaded"):
        store.download("k", Sabotage())


def test_download_of_a_blob_deleted_mid_stream_is_not_found(bucket: str) -> None:
    store = GcsBlobStore(bucket, chunk_size=256 * 1024)
    store.put("k", b"x" * (600 * 1024))

    class Vandal(io.BytesIO):
        def write(self, data: Any) -> int:
            if self.tell() == 0:
                store.delete("k")
            return super().write(data)

    with pytest.raises(NotFound, match="deleted while being downloaded"):
        store.download("k", Vandal())
