"""The engine on the local default (store and queue in one SQLite file): a step is three
commits (receive, claim, and everything after it), and a failure inside the last one leaves
the run exactly as before the step, so its redelivery runs it again."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentfn.adapters.local.sqlite_blobs import SqliteBlobStore
from agentfn.adapters.local.sqlite_queue import SqliteQueue
from agentfn.engine import Engine
from agentfn.runs import RunStatus
from agentfn.workflows import load_blueprint
from tests.support.engine_harness import drain, ledger, make_engine, project

CHAIN = """
nodes:
  - {id: one, type: tool, tool: record, args: {label: a}}
  - {id: two, type: tool, tool: record, args: {label: "{{ steps.one.output }}b"}}
  - {id: three, type: tool, tool: record, args: {label: "{{ steps.two.output }}c"}}
edges:
  - {from: one, to: two}
  - {from: two, to: three}
"""


def one_file_engine(tmp_path: Path) -> Engine:
    base = make_engine(tmp_path)
    path = tmp_path / "agentfn.db"
    return Engine(
        SqliteBlobStore(path),
        SqliteQueue(path, max_attempts=5),
        model_factory=base.model_factory,
        lease_s=base.lease_s,
        delivery_limit=5,
    )


def test_a_step_is_three_commits_when_store_and_queue_share_a_file(tmp_path: Path) -> None:
    engine = one_file_engine(tmp_path)
    assert isinstance(engine.blobs, SqliteBlobStore)
    commits: list[str] = []
    engine.blobs._db.get().set_trace_callback(
        lambda sql: commits.append(sql) if sql == "COMMIT" else None
    )
    run = engine.start(load_blueprint(project(tmp_path, CHAIN)), {})
    assert len(commits) == 1  # the blueprint, the run, its index entry and the first job
    done = drain(engine, run.id)
    assert done.status is RunStatus.completed and done.output == {"three": "ABC"}
    assert len(commits) == 1 + 3 * 3


def test_a_failure_after_the_step_keeps_nothing_of_it_and_the_redelivery_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = one_file_engine(tmp_path)
    wf = project(tmp_path, CHAIN)
    run = engine.start(load_blueprint(wf), {})
    queue = engine.queue
    assert isinstance(queue, SqliteQueue)
    real_ack = queue.ack
    failures = iter([OSError("disk full")])

    def ack_once_failing(message: object) -> None:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        real_ack(message)  # type: ignore[arg-type]

    monkeypatch.setattr(queue, "ack", ack_once_failing)
    [message] = queue.receive(1, visibility_timeout=5)
    assert engine.handle(message) == "retry"
    # The step's record, its output, the advance and the next job all rolled back.
    after = engine.store.get(run.id)
    assert after.pending == {"one"} and after.finished == set() and after.steps_run == 0
    record = engine.store.get_step(run.id, "one")
    assert record is not None and record[0].status == "running"  # the claim, committed alone
    assert engine.blobs.list(f"runs/{run.id}/nodes/").keys == []
    done = drain(engine, run.id, timeout_s=30)
    assert done.status is RunStatus.completed and done.output == {"three": "ABC"}
    assert done.steps_run == 3
    assert ledger(wf) == ["a", "a", "Ab", "ABc"]  # step one ran again; nothing else twice
    assert queue.depth() == 0 and queue.dead_letters() == []


def test_the_ending_event_follows_the_commit_and_a_rolled_back_end_emits_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = one_file_engine(tmp_path)
    events: list[str] = []
    engine = Engine(
        base.blobs,
        base.queue,
        model_factory=base.model_factory,
        lease_s=base.lease_s,
        events=lambda event: events.append(event["type"]),
    )
    single = "nodes:\n  - {id: one, type: tool, tool: record, args: {label: a}}\n"
    run = engine.start(load_blueprint(project(tmp_path, single)), {})
    queue = engine.queue
    assert isinstance(queue, SqliteQueue)
    real_ack = queue.ack

    def ack_failing(message: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(queue, "ack", ack_failing)
    [message] = queue.receive(1, visibility_timeout=5)
    assert engine.handle(message) == "retry"
    assert engine.store.get(run.id).status is RunStatus.queued  # the end rolled back
    assert events == ["agentfn.run.requested"]  # and announced nothing
    monkeypatch.setattr(queue, "ack", real_ack)
    done = drain(engine, run.id, timeout_s=30)
    assert done.status is RunStatus.completed
    assert events == ["agentfn.run.requested", "agentfn.run.completed"]


def test_on_separate_files_the_store_commits_before_the_queue(tmp_path: Path) -> None:
    base = make_engine(tmp_path)
    store, queue = SqliteBlobStore(tmp_path / "store.db"), SqliteQueue(tmp_path / "queue.db")
    engine = Engine(store, queue, model_factory=base.model_factory, lease_s=base.lease_s)
    run = engine.start(load_blueprint(project(tmp_path, CHAIN)), {})
    [message] = queue.receive(1, visibility_timeout=5)
    order: list[str] = []
    store._db.get().set_trace_callback(
        lambda sql: order.append("store") if sql == "COMMIT" else None
    )
    queue._db.get().set_trace_callback(
        lambda sql: order.append("queue") if sql == "COMMIT" else None
    )
    assert engine.handle(message) == "done"
    # The claim, then the batch: the step's record and the advance, then the job and the ack.
    assert order == ["store", "store", "queue"]
    assert engine.store.get(run.id).pending == {"two"}
