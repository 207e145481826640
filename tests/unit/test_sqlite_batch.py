"""Batches on the local SQLite adapters: the store's and the queue's writes on one file commit
together, all or none, so what follows a step is one commit (one fsync)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from agentfn.adapters.local.sqlite_blobs import SqliteBlobStore
from agentfn.adapters.local.sqlite_queue import SqliteQueue
from agentfn.errors import PreconditionFailed
from agentfn.ports import Batching


def seen(path: Path) -> tuple[list[str], int]:
    """What another connection sees committed: blob keys and the number of queued jobs."""
    with sqlite3.connect(path) as db:
        keys = [r[0] for r in db.execute("SELECT key FROM blobs ORDER BY key")]
        jobs = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    return keys, jobs


@pytest.fixture
def pair(tmp_path: Path) -> tuple[SqliteBlobStore, SqliteQueue, Path]:
    path = tmp_path / "agentfn.db"
    store, queue = SqliteBlobStore(path), SqliteQueue(path)
    store.put("setup", b"")
    queue.purge()
    return store, queue, path


def test_store_and_queue_on_one_file_commit_together(
    pair: tuple[SqliteBlobStore, SqliteQueue, Path],
) -> None:
    store, queue, path = pair
    assert isinstance(store, Batching) and isinstance(queue, Batching)
    commits: list[str] = []
    store._db.get().set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    with store.batch(), queue.batch():
        store.put("a", b"1")
        etag = store.put_if_absent("b", b"2")
        store.put_if_match("b", b"3", etag)
        queue.send({"n": 1})
        assert store.get("b").data == b"3"  # reads inside see the batch's writes
        assert seen(path) == (["setup"], 0)  # nobody else does until it commits
    assert seen(path) == (["a", "b", "setup"], 1)
    assert commits == ["COMMIT"]


def test_a_batch_that_raises_keeps_none_of_its_writes(
    pair: tuple[SqliteBlobStore, SqliteQueue, Path],
) -> None:
    store, queue, path = pair
    with pytest.raises(OSError), store.batch(), queue.batch():
        store.put("a", b"1")
        queue.send({"n": 1})
        raise OSError("disk full")
    assert seen(path) == (["setup"], 0)
    store.put("after", b"")  # the connection is usable again, outside any batch
    assert seen(path) == (["after", "setup"], 0)


def test_a_lost_compare_and_swap_inside_a_batch_undoes_only_itself(
    pair: tuple[SqliteBlobStore, SqliteQueue, Path],
) -> None:
    store, _, _ = pair
    etag = store.put("run", b"v1")
    with store.batch():
        store.put("step", b"done")
        with pytest.raises(PreconditionFailed):
            store.put_if_match("run", b"lost", '"' + "0" * 64 + '"')
        with pytest.raises(PreconditionFailed):
            store.put_if_absent("step", b"again")
        store.put_if_match("run", b"v2", etag)
    assert store.get("run").data == b"v2" and store.get("step").data == b"done"


def test_a_waiting_worker_is_woken_after_the_commit_and_finds_the_job(
    pair: tuple[SqliteBlobStore, SqliteQueue, Path],
) -> None:
    store, queue, _ = pair
    queue.wait(0)  # opens this process's end of the doorbell
    woken: list[tuple[float, int]] = []

    def worker() -> None:
        queue.wait(30)
        woken.append((time.monotonic(), len(queue.receive(10))))

    waiter = threading.Thread(target=worker)
    waiter.start()
    with store.batch(), queue.batch():
        queue.send({"n": 1})
        queue.send({"n": 2})
        time.sleep(0.3)  # a bell rung at send would wake the worker to an empty queue
        committed = time.monotonic()
    waiter.join(30)
    assert woken and woken[0][0] >= committed and woken[0][1] == 2


def test_adapters_asking_different_fsync_of_one_file_share_it_at_the_stronger(
    tmp_path: Path,
) -> None:
    path = tmp_path / "agentfn.db"
    store = SqliteBlobStore(path)
    queue = SqliteQueue(path, synchronous="full")
    with store.batch(), queue.batch():  # one connection: no wait on our own write lock
        store.put("a", b"1")
        queue.send({"n": 1})
    assert seen(path) == (["a"], 1)
    assert store._db.get().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_adapters_on_different_files_batch_each_file(tmp_path: Path) -> None:
    store, queue = SqliteBlobStore(tmp_path / "store.db"), SqliteQueue(tmp_path / "queue.db")
    with store.batch(), queue.batch():
        store.put("a", b"1")
        queue.send({"n": 1})
    assert store.get("a").data == b"1" and len(queue.receive(10)) == 1


def test_every_after_commit_hook_runs_even_when_one_raises(
    pair: tuple[SqliteBlobStore, SqliteQueue, Path],
) -> None:
    store, _, path = pair
    ran: list[str] = []

    def failing() -> None:
        ran.append("failing")
        raise RuntimeError("sink down")

    with pytest.raises(RuntimeError, match="sink down"), store.batch():
        store.put("a", b"1")
        store.after_commit(failing)
        store.after_commit(lambda: ran.append("next"))
        assert ran == []  # nothing before the commit
    assert ran == ["failing", "next"]
    assert seen(path)[0] == ["a", "setup"]  # the commit stands
    store.after_commit(lambda: ran.append("now"))  # outside a batch: at once
    assert ran[-1] == "now"
