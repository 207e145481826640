"""A worker killed with SIGKILL mid-step leaves a run that a new worker finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agentfn.functions.runtime import build_engine
from agentfn.runs import RunStatus
from agentfn.settings import Settings
from agentfn.workflows import load_blueprint
from tests.support.engine_harness import ledger, project

ROOT = Path(__file__).resolve().parents[2]


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings.as_env()}
    return subprocess.Popen(
        [sys.executable, "-m", "agentfn.functions.local.cli", "worker", "--poll", "0.02"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def wait_for(predicate: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def test_sigkill_mid_step_then_a_new_worker_finishes(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        """
        nodes:
          - {id: a, type: tool, tool: record, args: {label: a}}
          - {id: slow, type: tool, tool: slow, args: {label: slow, seconds: 1.5}}
          - {id: fan, type: parallel, for_each: "['x', 'y', 'z']", tool: record, args: {label: "{{ item }}"}}
          - {id: b, type: tool, tool: record, args: {label: b}}
          - {id: j, type: join}
        edges:
          - {from: a, to: slow}
          - {from: a, to: fan}
          - {from: slow, to: j}
          - {from: fan, to: j}
          - {from: j, to: b}
        """,
    )
    settings = Settings.from_env({"AGENTFN_LEASE_S": "1.0"}, home=tmp_path / "home")
    engine = build_engine(settings)
    run = engine.start(load_blueprint(wf), {})

    first = start_worker(settings)
    try:
        wait_for(lambda: "start:slow" in ledger(wf), 20)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert "end:slow" not in ledger(wf)
    assert engine.store.get(run.id).status is RunStatus.running

    second = start_worker(settings)
    try:
        wait_for(lambda: engine.store.get(run.id).status.terminal, 30)
    finally:
        second.terminate()
        second.wait(10)

    done = engine.store.get(run.id)
    assert done.status is RunStatus.completed
    entries = ledger(wf)
    # the killed step ran again (its effect had not been recorded); everything else once
    assert entries.count("start:slow") == 2 and entries.count("end:slow") == 1
    for label in ("a", "x", "y", "z", "b"):
        assert entries.count(label) == 1, entries
    records = {r.key: r for r in engine.store.steps(run.id)}
    assert set(records) == {
        "a",
        "slow",
        "fan",
        "fan[0]",
        "fan[1]",
        "fan[2]",
        "fan~gather",
        "j",
        "b",
    }
    assert all(r.status == "done" for r in records.values())
    assert records["slow"].attempt == 2
    assert done.steps_run == len(records) and engine.store.items_marked(done.id, "fan") == 3
    assert done.output == {"b": "B"}
