"""The SQLite queue's doorbell: idle workers sleep until a job arrives, with no fixed poll.

Each wait is given a long timeout, so a wait that returns quickly was woken, not timed out.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

from agentfn.adapters.local.sqlite_queue import SqliteQueue
from agentfn.ports import Doorbell
from agentfn.workflows import load_blueprint
from tests.support.engine_harness import make_engine, project

LONG = 30.0


def _send_later(path: str, pause: float) -> None:
    time.sleep(pause)
    SqliteQueue(path).send({"n": 1})


def test_a_send_from_another_process_wakes_a_waiting_worker(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "q.db")
    assert isinstance(queue, Doorbell)
    queue.wait(0)  # opens this process's end of the doorbell
    sender = multiprocessing.get_context("spawn").Process(
        target=_send_later, args=(str(tmp_path / "q.db"), 0.5)
    )
    sender.start()
    began = time.monotonic()
    queue.wait(LONG)
    waited = time.monotonic() - began
    sender.join(30)
    assert waited < LONG / 2, f"not woken: waited {waited:.1f}s"
    assert [m.body for m in queue.receive(10)] == [{"n": 1}]


def test_a_delayed_job_wakes_the_waiter_when_it_falls_due(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "q.db")
    queue.send({"n": 2}, delay=0.3)
    assert queue.receive(1) == []
    began = time.monotonic()
    queue.wait(LONG)
    assert time.monotonic() - began < LONG / 2
    time.sleep(0.05)  # the clock's grain
    assert [m.body for m in queue.receive(1)] == [{"n": 2}]


def test_a_job_whose_lease_runs_out_wakes_the_waiter(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "q.db")
    queue.send({"n": 3})
    assert len(queue.receive(1, visibility_timeout=0.3)) == 1  # taken, never acked
    began = time.monotonic()
    queue.wait(LONG)
    assert time.monotonic() - began < LONG / 2


def test_a_wait_with_nothing_to_wake_it_ends_at_its_timeout(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "q.db")
    began = time.monotonic()
    queue.wait(0.2)
    assert 0.15 <= time.monotonic() - began < LONG / 2


def test_an_empty_receive_takes_no_write_lock(tmp_path: Path) -> None:
    """Idle workers' looks at an empty queue never wait behind (or block) a writer."""
    queue = SqliteQueue(tmp_path / "q.db")
    queue.send({"n": 4})
    queue.ack(queue.receive(1)[0])
    writer = sqlite3.connect(tmp_path / "q.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        began = time.monotonic()
        assert queue.receive(5) == []
        assert time.monotonic() - began < 5.0  # the busy timeout is 30 s
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_an_idle_engine_worker_starts_a_new_run_without_polling(tmp_path: Path) -> None:
    wf = project(tmp_path, "nodes:\n  - {id: a, type: tool, tool: add, args: {a: 1, b: 1}}\n")
    engine = make_engine(tmp_path)
    stopping = threading.Event()
    worker = threading.Thread(target=engine.work, kwargs={"stop": stopping.is_set, "poll_s": LONG})
    worker.start()
    try:
        time.sleep(0.3)  # the worker has found the queue empty and sleeps
        run = engine.start(load_blueprint(wf), {})
        deadline = time.monotonic() + LONG / 2
        while not engine.store.get(run.id).status.terminal:
            assert time.monotonic() < deadline, "the idle worker was not woken"
            time.sleep(0.01)
    finally:
        stopping.set()
        engine.queue.send({"stop": True})  # ring, so the worker looks at stop() now
        worker.join(LONG)
    assert engine.store.get(run.id).output == {"a": 2}
