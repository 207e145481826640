"""Collaboration at scale: 1,000 independent subtasks, each an agent that waits on I/O (a
tool that sleeps, as a model call would), on 1, 2 and 4 worker processes of the local
default, beside a bare ``concurrent.futures`` pool doing the same waits; and the same plan
on S3 (moto) with four in-process workers, counting compare-and-swap retries on the run
record, the hot spot of a fan-out whose arrivals rewrite one shared record.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agentfn.collaboration import Plan, collaboration_blueprint
from agentfn.errors import PreconditionFailed
from agentfn.functions.local.workers import WorkerPool
from agentfn.ports import BlobStore
from agentfn.settings import Settings
from agentfn.workflows import LoadedBlueprint, load_blueprint
from tests.bench import workloads

SUBTASKS = 1000
SLEEP_S = 0.05  # what each subtask waits for, as a (fast) model call would
WORKERS = (1, 2, 4)
CAS_SIZES = (100, 1000)
CAS_THREADS = 4

TEAM = """\
name: bench-team
tools: [tools.py]
models:
  default: {provider: scripted, rules: rules.yaml}
agents:
  worker: {instructions: Work., capabilities: [work], tools: [nap]}
nodes:
  - {id: unused, type: agent, agent: worker}
"""
RULES = f"""\
rules:
  - after_tool: false
    reply:
      tool_calls:
        - name: nap
          arguments: {{seconds: {SLEEP_S}, index: 0}}
  - after_tool: true
    reply: {{content: "done"}}
"""


def team(folder: Path) -> LoadedBlueprint:
    (folder / "tools.py").write_text(workloads.TOOLS)
    (folder / "rules.yaml").write_text(RULES)
    (folder / "team.yaml").write_text(TEAM)
    return load_blueprint(folder / "team.yaml")


def plan(size: int) -> Plan:
    subtasks = [{"id": f"s{i}", "task": f"Subtask {i}.", "capability": "work"} for i in range(size)]
    return Plan.model_validate({"subtasks": subtasks})


def wall_s(workers: int) -> float:
    """Start to done of the 1,000-subtask collaboration on ``workers`` worker processes."""
    config = workloads.CONFIGS["agentfn (local default: SQLite)"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loaded, given = collaboration_blueprint(plan(SUBTASKS), team(folder))
        storage, queue_url = config.urls(folder)
        env = {"AGENTFN_STORAGE": storage, "AGENTFN_QUEUE": queue_url, "AGENTFN_HOME": str(folder)}
        settings = Settings.from_env({**os.environ, **env})
        eng = workloads.engine(config, folder)
        with WorkerPool(settings, workers):
            time.sleep(3.0)  # the workers have imported and wait on the doorbell
            started = time.perf_counter()
            run = eng.start(loaded, given)
            while not (final := eng.store.get(run.id)).status.terminal:
                time.sleep(0.01)
            elapsed = time.perf_counter() - started
        assert final.status.value == "completed" and not final.failures, final.error
        return elapsed


def futures_s(workers: int) -> float:
    """The same waits on a bare thread pool of ``workers``: no durability, no queue."""
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: time.sleep(SLEEP_S), range(SUBTASKS)))
    return time.perf_counter() - started


class CasCounter:
    """A blob store that counts writes of run records and the ones that lost a race."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.writes = 0
        self.retries = 0
        self._lock = threading.Lock()

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        try:
            return self.inner.put_if_match(key, data, etag)
        except PreconditionFailed:
            if key.endswith("/run.json"):
                with self._lock:
                    self.retries += 1
            raise
        finally:
            if key.endswith("/run.json"):
                with self._lock:
                    self.writes += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def cas_on_s3(size: int) -> dict[str, Any]:
    """The ``size``-subtask plan on S3 + SQS (moto), four workers in this process."""
    from agentfn.engine import Engine
    from tests.contract.conftest import BLOBSTORES, QUEUES, build_blobstore, build_queue

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        blobs = CasCounter(build_blobstore(("aws", BLOBSTORES["aws"].spec(folder / "b"))))
        queue = build_queue(("aws", QUEUES["aws"].spec(folder / "q")))
        loaded, given = collaboration_blueprint(plan(size), team(folder))
        factory = workloads.model_factory()
        engines = [
            Engine(blobs, queue, model_factory=factory, lease_s=60)  # type: ignore[arg-type]
            for _ in range(CAS_THREADS)
        ]
        run = engines[0].start(loaded, given)
        blobs.writes = blobs.retries = 0
        done = threading.Event()

        def stop() -> bool:
            return done.is_set()

        threads = [
            threading.Thread(target=e.work, kwargs={"stop": stop, "poll_s": 0.05, "batch": 10})
            for e in engines
        ]
        started = time.perf_counter()
        for t in threads:
            t.start()
        try:
            while not (final := engines[0].store.get(run.id)).status.terminal:
                time.sleep(0.05)
        finally:
            done.set()
            for t in threads:
                t.join()
        elapsed = time.perf_counter() - started
        assert final.status.value == "completed" and not final.failures, final.error
        steps = final.steps_run
        return {
            "subtasks": size,
            "steps": steps,
            "run_record_writes": blobs.writes,
            "cas_retries": blobs.retries,
            "retries_per_step": blobs.retries / steps,
            "wall_s": elapsed,
        }


def measure() -> dict[str, Any]:
    ours = {w: wall_s(w) for w in WORKERS}
    bare = {w: futures_s(w) for w in WORKERS}
    cas: list[dict[str, Any]] = []
    for size in CAS_SIZES:
        try:
            cas.append(cas_on_s3(size))
        except Exception as exc:  # report, never hide
            cas.append({"subtasks": size, "error": f"{type(exc).__name__}: {exc}"})
    return {
        "subtasks": SUBTASKS,
        "sleep_s": SLEEP_S,
        "workers": {
            str(w): {
                "wall_s": ours[w],
                "futures_wall_s": bare[w],
                "overhead_ms_per_subtask": (ours[w] - bare[w]) / SUBTASKS * 1000,
            }
            for w in WORKERS
        },
        "scaling_1_to_2": ours[1] / ours[2],
        "scaling_1_to_4": ours[1] / ours[4],
        "futures_scaling_1_to_2": bare[1] / bare[2],
        "cas_on_s3": cas,
    }


def markdown(report: dict[str, Any]) -> str:
    rows = [
        f"Collaboration: {report['subtasks']:,} independent subtasks, each an agent waiting "
        f"{report['sleep_s'] * 1000:.0f} ms on a tool (two steps), on the local default.",
        "",
        "| workers | agentfn (s) | concurrent.futures (s) | overhead per subtask (ms) |",
        "|---:|---:|---:|---:|",
    ]
    for w, r in report["workers"].items():
        rows.append(
            f"| {w} | {r['wall_s']:.2f} | {r['futures_wall_s']:.2f} | "
            f"{r['overhead_ms_per_subtask']:.2f} |"
        )
    target = "meets" if report["scaling_1_to_2"] >= 1.8 else "misses"
    rows += [
        "",
        f"Scaling 1 → 2 workers: {report['scaling_1_to_2']:.2f}x ({target} the 1.8x target; "
        f"a bare pool: {report['futures_scaling_1_to_2']:.2f}x); 1 → 4: "
        f"{report['scaling_1_to_4']:.2f}x.",
        "",
        f"The same plan on S3 + SQS (moto), {CAS_THREADS} workers in one process: "
        "compare-and-swap retries on the run record.",
        "",
        "| subtasks | steps | run-record writes | CAS retries | retries per step | wall (s) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["cas_on_s3"]:
        if "error" in r:
            rows.append(f"| {r['subtasks']} | not measured: {r['error']} | | | | |")
            continue
        rows.append(
            f"| {r['subtasks']} | {r['steps']} | {r['run_record_writes']} | {r['cas_retries']} "
            f"| {r['retries_per_step']:.3f} | {r['wall_s']:.1f} |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=2))
