"""BlobStore contract: the semantics core relies on, checked on every adapter."""

from __future__ import annotations

import hashlib
import io
import json
import random
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentfn.adapters.local import FileBlobStore
from agentfn.errors import NotFound, PreconditionFailed, UserError
from agentfn.ports import BlobStore
from agentfn.testing import MemoryBlobStore

# --------------------------------------------------------------------------- basics


def test_satisfies_protocol(blobstore: BlobStore) -> None:
    assert isinstance(blobstore, BlobStore)


def test_put_get_round_trip_and_etag_changes(blobstore: BlobStore) -> None:
    etag1 = blobstore.put("runs/r1/state.json", b'{"a": 1}')
    blob = blobstore.get("runs/r1/state.json")
    assert (blob.key, blob.data, blob.etag) == ("runs/r1/state.json", b'{"a": 1}', etag1)
    assert isinstance(etag1, str) and etag1

    etag2 = blobstore.put("runs/r1/state.json", b'{"a": 2}')
    assert etag2 != etag1
    assert blobstore.get("runs/r1/state.json").data == b'{"a": 2}'
    assert blobstore.get("runs/r1/state.json").etag == etag2


def test_binary_and_empty_values(blobstore: BlobStore) -> None:
    data = bytes(range(256)) * 3
    blobstore.put("bin/all-bytes", data)
    blobstore.put("bin/empty", b"")
    assert blobstore.get("bin/all-bytes").data == data
    assert blobstore.get("bin/empty").data == b""


def test_get_missing_raises_not_found(blobstore: BlobStore) -> None:
    with pytest.raises(NotFound):
        blobstore.get("nope/missing.json")
    blobstore.put("present/a", b"x")
    with pytest.raises(NotFound):
        blobstore.get("present")  # a prefix of a key is not a key


def test_put_if_absent_wins_once(blobstore: BlobStore) -> None:
    etag = blobstore.put_if_absent("locks/run-1", b"first")
    with pytest.raises(PreconditionFailed):
        blobstore.put_if_absent("locks/run-1", b"second")
    blob = blobstore.get("locks/run-1")
    assert (blob.data, blob.etag) == (b"first", etag)


def test_put_if_match(blobstore: BlobStore) -> None:
    stale = blobstore.put("counter", b"1")
    fresh = blobstore.put("counter", b"2")
    with pytest.raises(PreconditionFailed):
        blobstore.put_if_match("counter", b"3", stale)
    assert blobstore.get("counter").data == b"2"

    new = blobstore.put_if_match("counter", b"3", fresh)
    assert blobstore.get("counter").data == b"3"
    assert blobstore.get("counter").etag == new
    with pytest.raises(PreconditionFailed):  # the etag it replaced is now stale too
        blobstore.put_if_match("counter", b"4", fresh)


def test_put_if_match_on_missing_key_fails(blobstore: BlobStore) -> None:
    etag = blobstore.put("gone", b"x")
    blobstore.delete("gone")
    with pytest.raises(PreconditionFailed):
        blobstore.put_if_match("gone", b"y", etag)
    with pytest.raises(NotFound):
        blobstore.get("gone")


def test_delete_is_idempotent(blobstore: BlobStore) -> None:
    blobstore.delete("never/existed")
    blobstore.put("d/x/y", b"1")
    blobstore.put("d/z", b"2")
    blobstore.delete("d/x/y")
    blobstore.delete("d/x/y")
    with pytest.raises(NotFound):
        blobstore.get("d/x/y")
    assert blobstore.list("d/").keys == ["d/z"]
    blobstore.put_if_absent("d/x/y", b"again")  # a deleted key is absent again
    assert blobstore.get("d/x/y").data == b"again"


@pytest.mark.parametrize(
    "key",
    ["", "/etc/passwd", "..", "../x", "a/../b", "a/..", "a\\b", "a\x00b", "a//b", "a/"],
)
def test_bad_keys_rejected(blobstore: BlobStore, key: str) -> None:
    ops: list[Callable[[], Any]] = [
        lambda: blobstore.get(key),
        lambda: blobstore.put(key, b"x"),
        lambda: blobstore.put_if_absent(key, b"x"),
        lambda: blobstore.put_if_match(key, b"x", '"0"'),
        lambda: blobstore.delete(key),
    ]
    for op in ops:
        with pytest.raises(UserError) as info:
            op()
        assert info.value.field == "key"


# --------------------------------------------------------------------------- listing


def _list_all(store: BlobStore, prefix: str, limit: int) -> tuple[list[str], int]:
    keys: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = store.list(prefix, cursor=cursor, limit=limit)
        pages += 1
        assert len(page.keys) <= limit
        keys.extend(page.keys)
        if page.cursor is None:
            return keys, pages
        assert page.keys, "a page with a cursor must not be empty"
        cursor = page.cursor
        assert pages < 10_000


def test_list_prefix_not_on_segment_boundary(blobstore: BlobStore) -> None:
    for key in ["runs/abc/x", "runs/abd", "runs/ab", "runs/b/y", "runsx", "other/ab"]:
        blobstore.put(key, b"")
    assert blobstore.list("runs/ab").keys == ["runs/ab", "runs/abc/x", "runs/abd"]
    assert blobstore.list("runs/").keys == ["runs/ab", "runs/abc/x", "runs/abd", "runs/b/y"]
    assert blobstore.list("runs").keys == [
        "runs/ab",
        "runs/abc/x",
        "runs/abd",
        "runs/b/y",
        "runsx",
    ]
    everything = blobstore.list("")
    assert everything.keys == sorted(
        ["runs/abc/x", "runs/abd", "runs/ab", "runs/b/y", "runsx", "other/ab"]
    )
    assert everything.cursor is None
    assert blobstore.list("missing/").keys == []
    assert blobstore.list("runs/abc/x/deeper").keys == []


def test_list_order_is_lexicographic_across_dirs(blobstore: BlobStore) -> None:
    # '-' and '.' sort before '/', so "k/a-1" and "k/a.1" come before everything in "k/a/".
    keys = ["k/a/z", "k/a-1", "k/a.1", "k/a/b/c", "k/a0", "k/A", "k/_", "k/~"]
    for key in keys:
        blobstore.put(key, b"")
    assert blobstore.list("k/").keys == sorted(keys)
    got, _ = _list_all(blobstore, "k/", limit=3)
    assert got == sorted(keys)


def test_list_paginates_over_1100_keys(blobstore: BlobStore) -> None:
    rng = random.Random(7)
    expected = set()
    for i in range(1100):
        # Spread over nested dirs, with siblings whose names sort around '/'.
        shard = rng.choice(["s", "s-1", "s.2", "s/x", "t"])
        key = f"many/{shard}/{i:04d}" if i % 3 else f"many/{shard}-{i:04d}"
        expected.add(key)
        blobstore.put(key, str(i).encode())
    blobstore.put("manz", b"outside")
    want = sorted(expected)

    first = blobstore.list("many/")
    assert len(first.keys) == 1000
    assert first.cursor == first.keys[-1]
    keys, pages = _list_all(blobstore, "many/", limit=1000)
    assert (keys, pages) == (want, 2)

    keys, pages = _list_all(blobstore, "many/", limit=97)
    assert keys == want
    assert len(set(keys)) == len(keys) == 1100
    assert pages == -(-1100 // 97)


# --------------------------------------------------------------------------- races


def test_compare_and_swap_under_racing_processes(
    blobstore: BlobStore,
    blobstore_spec: tuple[str, dict[str, Any]],
    run_workers: Callable[..., list[Any]],
) -> None:
    blobstore.put("race/counter.json", json.dumps({"n": 0}).encode())
    results = run_workers(
        "blob_cas_worker",
        [[blobstore_spec, "race/counter.json", 100], [blobstore_spec, "race/counter.json", 100]],
    )
    assert json.loads(blobstore.get("race/counter.json").data) == {"n": 200}
    print("cas conflicts per worker:", [r["conflicts"] for r in results])


def test_put_if_absent_raced_by_processes(
    blobstore: BlobStore,
    blobstore_spec: tuple[str, dict[str, Any]],
    run_workers: Callable[..., list[Any]],
) -> None:
    keys = [f"claims/{i:02d}" for i in range(50)]
    won_a, won_b = run_workers(
        "blob_claim_worker", [[blobstore_spec, keys, "a"], [blobstore_spec, keys, "b"]]
    )
    assert sorted(won_a + won_b) == keys  # every key won exactly once
    for key in keys:
        owner = blobstore.get(key).data.decode()
        assert key in (won_a if owner == "a" else won_b)


def test_writers_and_deleters_of_sibling_keys_do_not_interfere(
    blobstore: BlobStore,
    blobstore_spec: tuple[str, dict[str, Any]],
    run_workers: Callable[..., list[Any]],
) -> None:
    # Deleting a key may prune its (now empty) parent while a sibling is being written there.
    results = run_workers(
        "blob_churn_worker", [[blobstore_spec, "a", 150], [blobstore_spec, "b", 150]]
    )
    assert results == [150, 150]
    assert blobstore.list("churn/").keys == ["churn/final/a", "churn/final/b"]


# --------------------------------------------------------------------------- local only


def test_local_layout_and_housekeeping(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "root")
    etag = store.put("a/b/c.json", b"{}")
    assert (tmp_path / "root/a/b/c.json").read_bytes() == b"{}"
    assert etag.startswith('"') and etag.endswith('"') and len(etag) == 34
    # Etags are compared without their quotes, so a stripped etag still matches.
    store.put_if_match("a/b/c.json", b"[]", etag.strip('"'))
    # Temp files and the lock file never show up as keys.
    (tmp_path / "root/a/b/.~tmp-leftover").write_bytes(b"junk")
    assert store.list().keys == ["a/b/c.json"]
    (tmp_path / "root/a/b/.~tmp-leftover").unlink()
    store.delete("a/b/c.json")
    assert not (tmp_path / "root/a").exists()  # empty parents pruned
    assert (tmp_path / "root").is_dir()


def test_local_store_leaves_no_lock_or_temp_files(tmp_path: Path) -> None:
    """Every key's writers are serialised by a byte of one .lock file: no file per key."""
    store = FileBlobStore(tmp_path / "root")
    for i in range(50):
        etag = store.put(f"runs/r/steps/{i}.json", b"1")
        store.put_if_match(f"runs/r/steps/{i}.json", b"2", etag)
        with pytest.raises(PreconditionFailed):
            store.put_if_absent(f"runs/r/steps/{i}.json", b"3")
    store.delete("runs/r/steps/0.json")
    files = sorted(
        p.relative_to(tmp_path / "root").as_posix()
        for p in (tmp_path / "root").rglob("*")
        if p.is_file()
    )
    assert files == [".lock", *sorted(f"runs/r/steps/{i}.json" for i in range(1, 50))]
    with pytest.raises(UserError):
        store.put(".lock", b"x")


def test_local_reserved_and_conflicting_keys(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path, durable=True)
    for key in [".locks/x", ".lock", "a/.~tmp-x"]:
        with pytest.raises(UserError) as info:
            store.put(key, b"")
        assert info.value.field == "key"
    with pytest.raises(UserError) as info:
        store.put("x" * 300, b"")
    assert info.value.field == "key"
    store.put("file", b"1")
    with pytest.raises(UserError, match="conflicts"):
        store.put("file/child", b"2")
    store.put("dir/child", b"3")
    with pytest.raises(UserError, match="conflicts"):
        store.put("dir", b"4")
    assert store.list().keys == ["dir/child", "file"]
    with pytest.raises(UserError) as info:
        store.list("../up")
    assert info.value.field == "prefix"


# --------------------------------------------------------------------------- streaming

BIG = 64 * 1024 * 1024


class PatternReader(io.RawIOBase):
    """A readable stream of ``size`` deterministic bytes that never exist all at once."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.offset = 0
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left)
        if n == 0:
            return 0
        chunk = _pattern(self.offset, n)
        buffer[:n] = chunk
        self.digest.update(chunk)
        self.left -= n
        self.offset += n
        return n


def _pattern(offset: int, n: int) -> bytes:
    block = hashlib.sha256(str(offset // 65536).encode()).digest() * 2048  # 64 KiB
    start = offset % 65536
    return (block * (2 + n // 65536))[start : start + n]


class HashingSink(io.RawIOBase):
    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.digest.update(view)
        self.size += len(view)
        return len(view)


def test_64mb_object_streams_in_and_out_without_holding_it(blobstore: BlobStore) -> None:
    if isinstance(blobstore, MemoryBlobStore):
        pytest.skip("agentfn.testing's in-memory store holds every object by design")
    source = io.BufferedReader(PatternReader(BIG), buffer_size=1 << 20)
    tracemalloc.start()
    try:
        etag_in = blobstore.upload("big/object.bin", source)
        sink = HashingSink()
        etag_out = blobstore.download("big/object.bin", sink)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert source.raw.left == 0  # type: ignore[attr-defined]
    assert sink.size == BIG
    assert sink.digest.hexdigest() == source.raw.digest.hexdigest()  # type: ignore[attr-defined]
    assert isinstance(etag_in, str) and etag_in and isinstance(etag_out, str) and etag_out
    assert peak < BIG // 2, f"peak Python memory {peak / 2**20:.1f} MiB while streaming 64 MiB"


def test_download_of_a_missing_key_is_not_found(blobstore: BlobStore) -> None:
    with pytest.raises(NotFound):
        blobstore.download("nope/missing.bin", HashingSink())
