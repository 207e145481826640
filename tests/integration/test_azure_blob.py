"""AzureBlobStore specifics beyond the contract suite, against Azurite."""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError

import agentfn.adapters.azure.blob as blob_module
from agentfn.adapters.azure.blob import STREAM_OPTIONS, AzureBlobStore, blob_service_client
from agentfn.errors import ConfigError, NotFound, PreconditionFailed, UserError
from tests.support.emulators.azure import ensure_azurite


@pytest.fixture
def container() -> Iterator[str]:
    ensure_azurite()
    name = f"agentfn-unit-{uuid.uuid4().hex[:12]}"
    AzureBlobStore(name).create_container()
    yield name
    with contextlib.suppress(ResourceNotFoundError):
        AzureBlobStore(name).service.delete_container(name)


def names_in(store: AzureBlobStore) -> list[str]:
    return list(store.service.get_container_client(store.container).list_blob_names())


# --------------------------------------------------------------------------- URLs


def test_from_url_with_a_connection_string() -> None:
    ensure_azurite()
    store = AzureBlobStore.from_url("az://my-container/team%20a/runs")
    assert (store.container, store.prefix) == ("my-container", "team a/runs/")
    assert store.service.account_name == "devstoreaccount1"
    assert "127.0.0.1" in store.service.url
    assert AzureBlobStore.from_url("az://my-container").prefix == ""
    assert AzureBlobStore.from_url("az://my-container/").prefix == ""


def test_from_url_without_a_connection_string_names_the_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    store = AzureBlobStore.from_url("az://myaccount/my-container/pre")
    assert store.service.url.startswith("https://myaccount.blob.core.windows.net")
    assert (store.container, store.prefix) == ("my-container", "pre/")
    with pytest.raises(ConfigError, match="no container") as info:
        AzureBlobStore.from_url("az://myaccount")
    assert info.value.field == "url"
    with pytest.raises(ConfigError, match="storage account name"):
        AzureBlobStore.from_url("az://My_Account/c")
    with pytest.raises(ConfigError, match="AZURE_STORAGE_CONNECTION_STRING"):
        AzureBlobStore("my-container")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://bucket", "not a az:// URL"),
        ("az://", "names no container"),
        ("az://Bad_Container", "invalid container name"),
        ("az://ab", "invalid container name"),
        ("az://a--b", "invalid container name"),
        ("az://container/x?sas=1", "no query"),
        ("az://container/a/../b", "'..' segment"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    ensure_azurite()
    with pytest.raises(ConfigError, match=message) as info:
        AzureBlobStore.from_url(url)
    assert info.value.field == "url"


def test_unknown_option_is_a_config_error() -> None:
    ensure_azurite()
    with pytest.raises(ConfigError, match="unknown AzureBlobStore options"):
        AzureBlobStore.from_url("az://container", chunk=1)


def test_service_clients_bound_streaming_memory() -> None:
    conn = ensure_azurite()
    service = blob_service_client(conn_str=conn)
    for name, value in STREAM_OPTIONS.items():
        assert getattr(service._config, name) == value
    assert STREAM_OPTIONS["max_chunk_get_size"] <= 1 << 20


# --------------------------------------------------------------------------- behaviour


def test_missing_container_is_a_config_error() -> None:
    ensure_azurite()
    store = AzureBlobStore(f"agentfn-absent-{uuid.uuid4().hex[:8]}")
    for op in (
        lambda: store.get("k"),
        lambda: store.put("k", b"x"),
        lambda: store.put_if_absent("k", b"x"),
        lambda: store.put_if_match("k", b"x", '"0x1"'),
        lambda: store.list(),
        lambda: store.delete("k"),
        lambda: store.download("k", io.BytesIO()),
        lambda: store.upload("k", io.BytesIO(b"x")),
    ):
        with pytest.raises(ConfigError, match="does not exist") as info:
            op()
        assert info.value.field == "url"


def test_prefixes_isolate_stores_sharing_a_container(container: str) -> None:
    a = AzureBlobStore(container, "tenant-a")
    b = AzureBlobStore(container, "tenant-b/")
    a.put("runs/1", b"a")
    b.put("runs/1", b"b")
    assert (a.get("runs/1").data, b.get("runs/1").data) == (b"a", b"b")
    assert a.list().keys == ["runs/1"] and b.list("runs/").keys == ["runs/1"]
    assert sorted(names_in(a)) == ["tenant-a/runs/1", "tenant-b/runs/1"]
    a.delete("runs/1")
    assert b.get("runs/1").data == b"b"


def test_a_cursor_resumes_on_any_instance(container: str) -> None:
    keys = [f"k/{i:03d}" for i in range(30)]
    for key in keys:
        AzureBlobStore(container).put(key, b"")
    first = AzureBlobStore(container).list("k/", limit=7)
    assert first.keys == keys[:7] and first.cursor == keys[6]
    # A fresh instance has no continuation token for this cursor: it resumes from the key.
    second = AzureBlobStore(container).list("k/", cursor=first.cursor, limit=7)
    assert second.keys == keys[7:14]
    # Any string works as a cursor: listing continues after it.
    assert AzureBlobStore(container).list("k/", cursor="k/0205", limit=3).keys == keys[21:24]
    assert AzureBlobStore(container).list("k/", cursor="k/999").keys == []
    last = AzureBlobStore(container).list("k/", cursor=keys[25], limit=10)
    assert (last.keys, last.cursor) == (keys[26:], None)


def test_a_page_larger_than_one_service_request(
    container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The service caps a listing request at 5000 names; shrink the cap to see pages stitched.
    monkeypatch.setattr(blob_module, "_MAX_RESULTS", 4)
    store = AzureBlobStore(container)
    for i in range(11):
        store.put(f"p/{i:02d}", b"")
    page = store.list("p/", limit=9)
    assert page.keys == [f"p/{i:02d}" for i in range(9)] and page.cursor == "p/08"
    rest = store.list("p/", cursor=page.cursor, limit=9)
    assert (rest.keys, rest.cursor) == (["p/09", "p/10"], None)
    fresh = AzureBlobStore(container).list("p/", cursor="p/01", limit=9)
    assert fresh.keys == [f"p/{i:02d}" for i in range(2, 11)] and fresh.cursor is None


def test_etags_match_with_or_without_quotes(container: str) -> None:
    store = AzureBlobStore(container)
    etag = store.put("e", b"1")
    assert etag.startswith('"') and etag.endswith('"')
    etag2 = store.put_if_match("e", b"2", etag.strip('"'))
    etag3 = store.put_if_match("e", b"3", "W/" + etag2)
    assert store.get("e").etag == etag3
    with pytest.raises(PreconditionFailed):
        store.put_if_match("e", b"4", etag)
    with pytest.raises(PreconditionFailed):
        store.put_if_absent("e", b"5")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("a.", "ends with '.'"),
        ("a\nb", "control character"),
        ("x" * 1025, "longer than Azure's 1024"),
        ("/".join(["d"] * 255), "254 path segments"),
    ],
)
def test_keys_azure_cannot_hold_are_rejected(container: str, key: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        AzureBlobStore(container).put(key, b"")
    assert info.value.field == "key"


def test_prefix_counts_toward_the_name_limit(container: str) -> None:
    store = AzureBlobStore(container, "p" * 20)
    store.put("x" * 1003, b"")  # 21 + 1003 = 1024
    with pytest.raises(UserError, match="1024"):
        store.put("x" * 1004, b"")


def test_streaming_a_seekable_file_and_large_put(container: str, tmp_path: Path) -> None:
    store = AzureBlobStore(container)
    data = uuid.uuid4().bytes * (300_000)  # 4.8 MB: several blocks
    path = tmp_path / "in.bin"
    path.write_bytes(data)
    with path.open("rb") as f:
        etag = store.upload("big/file", f)
    sink = io.BytesIO()
    assert store.download("big/file", sink) == etag
    assert sink.getvalue() == data
    assert store.get("big/file").data == data  # several ranged reads, one etag
    etag2 = store.put("big/bytes", data)
    assert store.get("big/bytes").etag == etag2
    with pytest.raises(NotFound):
        store.get("big/nothing")


def test_repr_names_the_location(container: str) -> None:
    store = AzureBlobStore(container, "pre")
    assert repr(store) == (
        f"AzureBlobStore(account='devstoreaccount1', container='{container}', prefix='pre/')"
    )
