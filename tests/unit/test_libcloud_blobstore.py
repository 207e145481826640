"""LibcloudBlobStore specifics on the LOCAL driver: layout, URLs, locking, conflicts."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest

from agentfn.adapters.libcloud import LibcloudBlobStore
from agentfn.errors import ConfigError, PreconditionFailed, UserError


def _store(tmp_path: Path, **kwargs: object) -> LibcloudBlobStore:
    return LibcloudBlobStore(
        "local", "box", key=str(tmp_path / "root"), lock_dir=str(tmp_path / "locks"), **kwargs
    )


def test_objects_are_files_under_root_container_prefix(tmp_path: Path) -> None:
    store = _store(tmp_path, prefix="pre", create=True)
    etag = store.put("a/b.json", b"{}")
    assert (tmp_path / "root/box/pre/a/b.json").read_bytes() == b"{}"
    assert etag.startswith('"') and len(etag) == 34
    assert store.list().keys == ["a/b.json"]
    store.delete("a/b.json")
    assert not (tmp_path / "root/box/pre").exists()  # the driver prunes empty folders
    assert repr(store) == "LibcloudBlobStore(driver='local', container='box', prefix='pre/')"


def test_etag_is_the_content_hash_not_the_mtime(tmp_path: Path) -> None:
    store = _store(tmp_path, create=True)
    first = store.put("k", b"same")
    assert store.put("k", b"same") == first  # same bytes, same etag (as S3)
    changed = store.put("k", b"other")
    assert changed != first
    with pytest.raises(PreconditionFailed):
        store.put_if_match("k", b"x", first)
    store.put_if_match("k", b"x", changed.strip('"'))  # quotes optional


def test_missing_container_needs_create(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    with pytest.raises(ConfigError) as info:
        _store(tmp_path)
    assert info.value.field == "container"
    _store(tmp_path, create=True)
    assert (tmp_path / "root/box").is_dir()


def test_url_forms(tmp_path: Path) -> None:
    root = tmp_path / "r"
    store = LibcloudBlobStore.from_url(
        f"libcloud+local://box/runs/x?root={root}&create=true",
        lock_dir=str(tmp_path / "locks"),
    )
    assert (store.driver_name, store.container, store.prefix) == ("local", "box", "runs/x/")
    store.put("k", b"v")
    assert (root / "box/runs/x/k").read_bytes() == b"v"


@pytest.mark.parametrize(
    "url",
    [
        "libcloud://box",
        "libcloud+local://box",  # no root
        "libcloud+local://?root=/tmp",
        "libcloud+local://box?root=/tmp&root=/x",
        "libcloud+s3://bucket?key=AKIA",
        "libcloud+s3://bucket?secret=x",
        "libcloud+nosuchdriver://box?root=/tmp",
        "libcloud+local://box?root=/tmp&create=maybe",
        "libcloud+local://box/a/../b?root=/tmp",
        "file:///tmp",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        LibcloudBlobStore.from_url(url)
    assert info.value.field == "url"


def test_credentials_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "envroot/box").mkdir(parents=True)
    monkeypatch.setenv("LIBCLOUD_KEY", str(tmp_path / "envroot"))
    store = LibcloudBlobStore("local", "box", lock_dir=str(tmp_path / "locks"))
    store.put("k", b"v")
    assert (tmp_path / "envroot/box/k").exists()
    monkeypatch.delenv("LIBCLOUD_KEY")
    with pytest.raises(ConfigError) as info:
        LibcloudBlobStore("local", "box")
    assert info.value.field == "key"


def test_key_and_subkey_conflict_like_the_local_store(tmp_path: Path) -> None:
    store = _store(tmp_path, create=True)
    store.put("file", b"1")
    with pytest.raises(UserError, match="conflicts"):
        store.put("file/child", b"2")
    store.put("dir/child", b"3")
    with pytest.raises(UserError, match="conflicts"):
        store.put("dir", b"4")
    for key in ["x/.lock/y", "x/.hash/y", "s" * 300]:
        with pytest.raises(UserError) as info:
            store.put(key, b"")
        assert info.value.field == "key"


def test_threads_racing_compare_and_swap(tmp_path: Path) -> None:
    # flock locks belong to open files, so threads of one process exclude each other too.
    store = _store(tmp_path, create=True)
    store.put("n", b'{"n": 0}')

    def bump() -> None:
        for _ in range(50):
            while True:
                blob = store.get("n")
                try:
                    value = json.loads(blob.data)["n"] + 1
                    store.put_if_match("n", json.dumps({"n": value}).encode(), blob.etag)
                    break
                except PreconditionFailed:
                    continue

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert json.loads(store.get("n").data) == {"n": 200}


def test_streaming_round_trip(tmp_path: Path) -> None:
    store = _store(tmp_path, create=True)
    data = bytes(range(256)) * 20_000
    etag = store.upload("big.bin", io.BytesIO(data))
    sink = io.BytesIO()
    assert store.download("big.bin", sink) == etag == store.get("big.bin").etag
    assert sink.getvalue() == data
