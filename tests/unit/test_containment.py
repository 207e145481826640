"""One bad message never stops a worker, and a job that leaves for good ends its run.

Before: an exception outside step execution (a corrupt run record, a full disk) escaped
``Engine.handle`` and killed the worker process, and a retry policy above the queue's delivery
limit let the queue drop a job while its run stayed ``running`` forever.
"""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import Any

import pytest

from agentfn import RunStatus
from agentfn.errors import BlueprintError, CorruptRecord
from agentfn.events.cloudevents import job_of
from agentfn.resilience import Backoff
from agentfn.workflows import load_blueprint
from tests.support.engine_harness import drain, make_engine, project

ONE_TOOL = "nodes:\n  - {id: a, type: tool, tool: record, args: {label: x}}\n"


def test_a_corrupt_run_record_is_dead_lettered_and_the_worker_goes_on(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    loaded = load_blueprint(project(tmp_path, ONE_TOOL))
    broken = engine.start(loaded, {})
    healthy = engine.start(loaded, {})
    (tmp_path / "store" / "runs" / broken.id / "run.json").write_text("{not json")
    stop = threading.Event()
    worker = threading.Thread(target=engine.work, kwargs={"stop": stop.is_set, "poll_s": 0.01})
    worker.start()
    try:
        assert drain(engine, healthy.id).status == RunStatus.completed
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()
    (dead,) = engine.queue.dead_letters()
    assert job_of(dead.body)["run"] == broken.id and "CorruptRecord" in dead.reason


def test_a_full_disk_for_a_while_is_retried_then_the_run_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(tmp_path)
    engine.contained_backoff = Backoff(base_s=0, max_s=0)
    run = engine.start(load_blueprint(project(tmp_path, ONE_TOOL)), {})
    real = engine.store.put_step
    failures = iter([True, True])

    def put_step(*args: Any, **kwargs: Any) -> str:
        if next(failures, False):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.store, "put_step", put_step)
    for _ in range(2):  # two deliveries meet the full disk; each is put back, not lost
        (message,) = engine.queue.receive(1, visibility_timeout=5)
        assert engine.handle(message) == "retry"
    assert drain(engine, run.id).status == RunStatus.completed


def test_a_disk_that_stays_full_ends_the_run_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(tmp_path, max_attempts=4)
    engine.contained_backoff = Backoff(base_s=0, max_s=0)
    run = engine.start(load_blueprint(project(tmp_path, ONE_TOOL)), {})

    def put_step(*args: Any, **kwargs: Any) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(engine.store, "put_step", put_step)
    outcomes = []
    while True:
        messages = engine.queue.receive(1, visibility_timeout=5)
        if not messages:
            break
        outcomes.append(engine.handle(messages[0]))
    assert outcomes == ["retry", "retry", "retry", "dead"]  # the last delivery ends it
    ended = engine.store.get(run.id)
    assert ended.status == RunStatus.failed and ended.error is not None
    assert "No space left on device" in ended.error.message
    (dead,) = engine.queue.dead_letters()
    assert "OSError" in dead.reason


def test_a_retry_policy_above_the_queue_limit_is_refused_at_start(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, max_attempts=5)
    body = "nodes:\n  - {id: a, type: tool, tool: record, args: {label: x}, retry: {max_attempts: 8}}\n"
    with pytest.raises(BlueprintError, match="must be below the queue's delivery limit of 5") as e:
        engine.start(load_blueprint(project(tmp_path, body)), {})
    assert e.value.field == "nodes[0].retry.max_attempts"


def test_a_failing_step_is_failed_by_the_engine_before_the_queue_would_drop_it(
    tmp_path: Path,
) -> None:
    """retry.max_attempts 4 on a queue that delivers 5 times: the engine ends the run."""
    engine = make_engine(tmp_path, max_attempts=5)
    body = (
        "nodes:\n  - {id: a, type: tool, tool: explode, args: {message: boom},"
        " retry: {max_attempts: 4, backoff: {base_s: 0.01, max_s: 0.01}}}\n"
    )
    run = engine.start(load_blueprint(project(tmp_path, body)), {})
    ended = drain(engine, run.id)
    assert ended.status == RunStatus.failed and ended.error is not None
    assert ended.error.attempts == 4


def test_listing_runs_skips_a_corrupt_record(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    loaded = load_blueprint(project(tmp_path, ONE_TOOL))
    broken, healthy = engine.start(loaded, {}), engine.start(loaded, {})
    (tmp_path / "store" / "runs" / broken.id / "run.json").write_bytes(b"\x00garbage")
    runs, _ = engine.store.list_runs()
    assert [r.id for r in runs] == [healthy.id]
    with pytest.raises(CorruptRecord, match=broken.id):
        engine.store.get(broken.id)
