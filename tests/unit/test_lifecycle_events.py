"""The run lifecycle events the schemas publish are emitted: one requested, one ending, per run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from agentfn import RunStatus
from agentfn.events.cloudevents import EVENTS
from agentfn.testing import WorkflowHarness
from tests.support.engine_harness import project


def _harness() -> tuple[WorkflowHarness, list[dict[str, Any]]]:
    harness = WorkflowHarness()
    seen: list[dict[str, Any]] = []
    harness.engine.events = seen.append
    return harness, seen


def _checked(events: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    for event in events:  # every event is valid against its own schema model
        EVENTS[event["type"]].model_validate(event)
    return [(e["type"], e["data"]) for e in events]


def test_a_completed_run_emits_requested_then_completed_once(tmp_path: Path) -> None:
    workflow = project(
        tmp_path,
        """
        nodes:
          - {id: a, type: tool, tool: record, args: {label: a}}
          - {id: b, type: tool, tool: record, args: {label: b}}
        edges:
          - {from: a, to: b}
        """,
    )
    harness, seen = _harness()
    run = harness.drain(harness.start(workflow).id)
    assert run.status is RunStatus.completed
    assert _checked(seen) == [
        ("agentfn.run.requested", {"run": run.id, "workflow": "wf", "cid": run.id}),
        (
            "agentfn.run.completed",
            {"run": run.id, "workflow": "wf", "status": "completed", "cid": run.id, "error": None},
        ),
    ]


@pytest.mark.parametrize(
    "node",
    [
        "{id: boom, type: tool, tool: explode, args: {message: kaput}, retry: {max_attempts: 1}}",
        "{id: w, type: wait, signal: s, timeout_s: 5, on_timeout: fail}",
    ],
)
def test_a_failed_run_emits_failed_with_its_error(tmp_path: Path, node: str) -> None:
    workflow = project(tmp_path, f"nodes:\n  - {node}\n")
    harness, seen = _harness()
    run = harness.drain(harness.start(workflow).id)
    harness.advance(10)
    run = harness.drain(run.id)
    assert run.status is RunStatus.failed and run.error is not None
    kinds = _checked(seen)
    assert [k for k, _ in kinds] == ["agentfn.run.requested", "agentfn.run.failed"]
    assert kinds[1][1]["status"] == "failed" and kinds[1][1]["error"] == run.error.message


def test_the_default_sink_is_a_log_line_with_the_event(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    workflow = project(
        tmp_path, "nodes:\n  - {id: a, type: tool, tool: record, args: {label: a}}\n"
    )
    harness = WorkflowHarness()
    with caplog.at_level(logging.INFO, logger="agentfn.events"):
        harness.drain(harness.start(workflow).id)
    lines = [r for r in caplog.records if r.name == "agentfn.events"]
    assert [r.getMessage() for r in lines] == ["agentfn.run.requested", "agentfn.run.completed"]
    assert all(r.event["specversion"] == "1.0" for r in lines)  # type: ignore[attr-defined]
