"""The executor registry, and the lifecycle's side of the split (it names no node kind)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel

from agentfn.engine import EXECUTORS, StepContext, _lifecycle, executor
from agentfn.runs import RunStatus, StepOutcome
from agentfn.workflows import Node, ToolNode, load_blueprint
from tests.support.engine_harness import drain, ledger, make_engine, project

NODE_KINDS: tuple[type, ...] = get_args(get_args(Node)[0])
TOOL: type[BaseModel] = ToolNode  # the registry's key type


def test_every_node_kind_has_exactly_one_executor() -> None:
    assert len(NODE_KINDS) == 8
    assert set(EXECUTORS) == set(NODE_KINDS)


def test_a_kind_cannot_be_registered_twice() -> None:
    first = EXECUTORS[ToolNode]
    with pytest.raises(ValueError, match="ToolNode already has an executor"):

        @executor(ToolNode)
        def again(sc: StepContext, node: ToolNode) -> StepOutcome:
            raise AssertionError("never registered")

    assert EXECUTORS[ToolNode] is first


def test_the_engine_executes_steps_through_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wf = project(
        tmp_path,
        """
        nodes:
          - {id: a, type: tool, tool: record, args: {label: a}}
          - {id: b, type: condition, expression: "steps.a.output + '!'"}
        edges:
          - {from: a, to: b}
        """,
    )

    def fake(sc: StepContext, node: ToolNode) -> StepOutcome:
        return sc.complete(sc.step.node, f"fake {node.tool} for {sc.run.workflow}")

    monkeypatch.setitem(EXECUTORS, TOOL, fake)
    engine = make_engine(tmp_path)
    done = drain(engine, engine.start(load_blueprint(wf), {}).id)
    assert done.status is RunStatus.completed
    assert done.output == {"b": "fake record for wf!"}
    assert ledger(wf) == []  # the real tool never ran


def test_a_kind_without_an_executor_fails_the_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wf = project(tmp_path, "nodes:\n  - {id: a, type: tool, tool: record, args: {label: a}}\n")
    monkeypatch.delitem(EXECUTORS, TOOL)
    engine = make_engine(tmp_path)
    done = drain(engine, engine.start(load_blueprint(wf), {}).id)
    assert done.status is RunStatus.failed and done.error is not None
    assert done.error.type == "StepFailed" and "no executor for kind ToolNode" in done.error.message


def test_the_lifecycle_names_no_node_kind() -> None:
    source = inspect.getsource(_lifecycle)
    named = [kind.__name__ for kind in NODE_KINDS if kind.__name__ in source]
    assert named == []


def test_an_output_template_that_fails_to_render_fails_the_run(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        """
        nodes:
          - {id: a, type: tool, tool: add, args: {a: 1, b: 1}}
        output: "{{ steps.a.output.nope }}"
        """,
    )
    engine = make_engine(tmp_path)
    done = drain(engine, engine.start(load_blueprint(wf), {}).id)
    assert done.status is RunStatus.failed
    assert done.error is not None
    assert (done.error.step, done.error.type) == ("output", "ExpressionError")
    assert "nope" in done.error.message
    assert done.output is None and done.finished_at is not None
    assert not done.pending and done.finished == {"a"}
