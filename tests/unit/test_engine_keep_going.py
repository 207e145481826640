"""``on_failure: continue``: a node whose step fails for good is recorded in ``Run.failures``,
the paths through it are skipped, and the rest of the run completes. ``require: all`` joins
start only when every incoming edge was taken."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentfn.errors import BlueprintError
from agentfn.events.cloudevents import job_of
from agentfn.runs import RunStatus
from agentfn.workflows import load_blueprint
from tests.support.engine_harness import drain, ledger, make_engine, project

RETRY = "retry: {max_attempts: 2, backoff: {base_s: 0, max_s: 0, jitter: false}}"


def run_to_end(tmp_path: Path, body: str, events: list[dict[str, Any]] | None = None) -> Any:
    wf = project(tmp_path, body)
    engine = make_engine(tmp_path)
    if events is not None:
        engine.events = events.append
    run = engine.start(load_blueprint(wf), {})
    return wf, engine, drain(engine, run.id)


def test_a_failed_node_that_keeps_going_skips_its_paths_and_the_run_completes(
    tmp_path: Path,
) -> None:
    events: list[dict[str, Any]] = []
    wf, engine, done = run_to_end(
        tmp_path,
        f"""
        nodes:
          - {{id: boom, type: tool, tool: explode, args: {{message: kaput}}, on_failure: continue, {RETRY}}}
          - {{id: after, type: tool, tool: record, args: {{label: after}}}}
          - {{id: other, type: tool, tool: record, args: {{label: other}}}}
        edges:
          - {{from: boom, to: after}}
        """,
        events,
    )
    assert done.status is RunStatus.completed
    assert done.error is None
    failure = done.failures["boom"]
    assert (failure.step, failure.type, failure.message, failure.attempts) == (
        "boom",
        "RuntimeError",
        "kaput",
        2,
    )
    assert done.skipped == {"after"} and done.finished == {"other"}
    assert done.output == {"other": "OTHER"}
    assert sorted(ledger(wf)) == ["explode", "explode", "other"]  # retried, then kept going
    [dead] = engine.queue.dead_letters()
    assert job_of(dead.body)["step"] == "boom"
    ended = [e for e in events if e["type"].endswith(("completed", "failed"))]
    assert [e["type"].rsplit(".", 1)[-1] for e in ended] == ["completed"]


def test_without_keep_going_the_same_failure_ends_the_run(tmp_path: Path) -> None:
    _, _, done = run_to_end(
        tmp_path,
        f"""
        nodes:
          - {{id: boom, type: tool, tool: explode, args: {{message: kaput}}, {RETRY}}}
          - {{id: other, type: tool, tool: slow, args: {{label: other, seconds: 0.2}}}}
        """,
    )
    assert done.status is RunStatus.failed and done.failures == {}
    assert done.error is not None and done.error.step == "boom"


def test_a_fan_out_whose_items_fail_fails_as_one_node_and_the_run_goes_on(tmp_path: Path) -> None:
    wf, _, done = run_to_end(
        tmp_path,
        f"""
        nodes:
          - id: fan
            type: parallel
            for_each: "[1, 2, 3]"
            tool: explode
            args: {{message: "item {{{{ item }}}}"}}
            on_failure: continue
            {RETRY}
          - {{id: after, type: tool, tool: record, args: {{label: after}}}}
          - {{id: other, type: tool, tool: record, args: {{label: other}}}}
        edges:
          - {{from: fan, to: after}}
        """,
    )
    assert done.status is RunStatus.completed
    assert set(done.failures) == {"fan"}
    assert done.failures["fan"].message.startswith("item ")
    assert done.skipped == {"after"} and "fan" not in done.finished
    assert done.pending == set() and done.started == set()
    assert "other" in ledger(wf) and "after" not in ledger(wf)


def test_a_join_that_requires_all_is_skipped_when_one_path_failed(tmp_path: Path) -> None:
    _, engine, done = run_to_end(
        tmp_path,
        f"""
        nodes:
          - {{id: good, type: tool, tool: record, args: {{label: good}}}}
          - {{id: bad, type: tool, tool: explode, args: {{message: no}}, on_failure: continue, {RETRY}}}
          - {{id: every, type: join, require: all}}
          - {{id: some, type: join}}
          - {{id: needs_all, type: tool, tool: record, args: {{label: all}}}}
          - {{id: needs_some, type: tool, tool: record, args: {{label: some}}}}
        edges:
          - {{from: good, to: every}}
          - {{from: bad, to: every}}
          - {{from: good, to: some}}
          - {{from: bad, to: some}}
          - {{from: every, to: needs_all}}
          - {{from: some, to: needs_some}}
        """,
    )
    assert done.status is RunStatus.completed
    assert done.skipped == {"every", "needs_all"}
    assert engine.store.node_output(done.id, "some") == {"good": "GOOD"}  # the taken edge only
    assert done.output == {"needs_some": "SOME"}


@pytest.mark.parametrize(
    ("node", "field"),
    [
        ("{id: a, type: tool, tool: record, args: {label: a}, on_failure: skip}", "on_failure"),
        ("{id: a, type: join, require: most}", "require"),
    ],
)
def test_unknown_failure_and_join_modes_are_refused_with_their_line(
    tmp_path: Path, node: str, field: str
) -> None:
    wf = project(tmp_path, f"nodes:\n  - {node}\n")
    with pytest.raises(
        BlueprintError, match=rf"wf.yaml:\d+: nodes\[0\]\.{field}: Input should be "
    ):
        load_blueprint(wf)
