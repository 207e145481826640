"""A step longer than the lease is renewed, not taken over; a step past its timeout fails.

Before: nothing renewed the lease, so a step longer than ``lease_s`` ran again on a second
worker, then a third, and the run failed with a false ``WorkerLost``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from agentfn import RunStatus
from agentfn.errors import BlueprintError
from agentfn.workflows import load_blueprint
from tests.support.engine_harness import ledger, make_engine, project

SLOW = "nodes:\n  - {id: a, type: tool, tool: slow, args: {label: long, seconds: SECONDS}EXTRA}\n"


def _workflow(tmp_path: Path, seconds: float, extra: str = "") -> Path:
    return project(tmp_path, SLOW.replace("SECONDS", str(seconds)).replace("EXTRA", extra))


def test_a_step_four_leases_long_runs_once_with_two_workers(tmp_path: Path) -> None:
    engines = [make_engine(tmp_path, lease_s=0.3, worker=f"w{i}") for i in range(2)]
    wf = _workflow(tmp_path, 1.2)
    run = engines[0].start(load_blueprint(wf), {})
    stop = threading.Event()
    threads = [
        threading.Thread(target=e.work, kwargs={"stop": stop.is_set, "poll_s": 0.02})
        for e in engines
    ]
    for t in threads:
        t.start()
    try:
        deadline = threading.Event()
        for _ in range(200):
            if engines[0].store.get(run.id).status.terminal:
                break
            deadline.wait(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    done = engines[0].store.get(run.id)
    assert done.status == RunStatus.completed, done.error
    assert ledger(wf) == ["start:long", "end:long"]  # never started a second time


def test_a_step_past_its_timeout_fails_with_step_timeout(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, lease_s=5)
    wf = _workflow(tmp_path, 0.5, ", step_timeout_s: 0.1, retry: {max_attempts: 1}")
    run = engine.start(load_blueprint(wf), {})
    (message,) = engine.queue.receive(1, visibility_timeout=5)
    engine.handle(message)
    failed = engine.store.get(run.id)
    assert failed.status == RunStatus.failed and failed.error is not None
    assert failed.error.type == "StepTimeout"
    assert "longer than its timeout of 0.1 s" in failed.error.message


def test_a_timeout_above_the_deployment_step_timeout_is_refused(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    engine.step_timeout_s = 120
    wf = _workflow(tmp_path, 0, ", step_timeout_s: 600")
    with pytest.raises(BlueprintError, match="longer than this deployment's step timeout") as e:
        engine.start(load_blueprint(wf), {})
    assert e.value.field == "nodes[0].step_timeout_s"
