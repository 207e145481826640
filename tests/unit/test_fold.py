"""The fold: pure, idempotent, and it drives any valid delivery order to the same end.

Outcomes here are scripted the way the executors would produce them (a node completes with
its edges' activeness, a parallel node fans out, an agent takes turns, a wait parks), so
the fold runs on a Run and a Blueprint alone: no store, no queue, no clock.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from agentfn.engine import _fold
from agentfn.engine._fold import (
    fail_run,
    fold,
    gather,
    item_completed,
    marker_suffices,
    seed,
)
from agentfn.ports import Usage
from agentfn.runs import Run, RunError, RunStatus, StepOutcome, Waiting
from agentfn.steps import StepKey, item_key
from agentfn.workflows import AgentNode, Blueprint, JoinNode, ParallelNode, WaitNode

# ------------------------------------------------------------------ scripted outcomes


@dataclass
class Script:
    """What each step of a blueprint produces, decided up front."""

    active: dict[tuple[str, str], bool] = field(default_factory=dict)  # edge → taken
    fan_out: dict[str, int] = field(default_factory=dict)  # parallel node → items
    turns: dict[str, int] = field(default_factory=dict)  # agent (or agent-bodied) node → turns
    seed: int = 0

    def usage(self, key: str) -> tuple[Usage, float]:
        rnd = random.Random(f"{self.seed}/{key}")
        if StepKey.parse(key).item is not None and rnd.random() < 0.5:
            return Usage(), 0.0  # a free item (a tool's): only its marker records it
        # eighths are exact in binary, so sums do not depend on the order of addition
        return Usage(prompt_tokens=rnd.randint(0, 90), completion_tokens=rnd.randint(0, 90)), (
            rnd.randint(0, 16) / 8
        )

    def outcome(self, bp: Blueprint, key: str) -> StepOutcome:
        step = StepKey.parse(key)
        node = bp.node_map[step.node]
        usage, cost = self.usage(key)

        def completes(unit: str) -> StepOutcome:
            edges = {}
            if "[" not in unit:
                edges = {
                    e.target: self.active[(e.source, e.target)] for e in bp.outgoing.get(unit, [])
                }
            return StepOutcome(output=unit, completes=unit, edges=edges, usage=usage, cost_usd=cost)

        agent_body = isinstance(node, AgentNode) or (
            isinstance(node, ParallelNode) and node.agent is not None and step.item is not None
        )
        if agent_body:
            if (step.turn or 0) + 1 < self.turns.get(step.node, 1):
                return StepOutcome(
                    continue_with=[str(step.next_turn())], usage=usage, cost_usd=cost
                )
            return completes(step.unit)
        if isinstance(node, ParallelNode):
            if step.phase == "gather" or step.item is not None:
                return completes(step.unit)
            count = self.fan_out.get(node.id, 0)
            keys = [item_key(node.id, i, agent=node.agent is not None) for i in range(count)]
            return StepOutcome(
                output={"items": list(range(count))},
                fan_out=count,
                continue_with=keys or [str(StepKey(node.id, phase="gather"))],
                usage=usage,
                cost_usd=cost,
            )
        if isinstance(node, WaitNode) and step.phase is None:
            return StepOutcome(
                wait=Waiting(signal=node.signal, deadline=1e9),
                continue_with=[str(StepKey(node.id, phase="wake"))],
                usage=usage,
                cost_usd=cost,
            )
        return completes(step.unit)


# ------------------------------------------------------------------ blueprints

NODE_BODIES: dict[str, dict[str, Any]] = {
    "tool": {"type": "tool", "tool": "t"},
    "condition": {"type": "condition", "expression": "true"},
    "join": {"type": "join"},
    "agent": {"type": "agent", "agent": "a"},
    "parallel_tool": {"type": "parallel", "for_each": "[]", "tool": "t"},
    "parallel_agent": {"type": "parallel", "for_each": "[]", "agent": "a"},
    "wait": {"type": "wait", "signal": "go"},
}


def blueprint(nodes: dict[str, str], edges: list[tuple[str, str]]) -> Blueprint:
    return Blueprint.model_validate(
        {
            "name": "wf",
            "nodes": [{"id": n, **NODE_BODIES[kind]} for n, kind in nodes.items()],
            "edges": [{"from": s, "to": t} for s, t in edges],
        }
    )


LINEAR = blueprint(
    {"a": "tool", "b": "agent", "c": "parallel_tool", "d": "condition", "e": "wait", "f": "tool"},
    [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e"), ("e", "f")],
)

# check → {left (tool fan-out), right (agent), mid → after} → end (join) → tail
DIAMOND = blueprint(
    {
        "check": "condition",
        "left": "parallel_tool",
        "right": "agent",
        "mid": "parallel_agent",
        "after": "tool",
        "end": "join",
        "tail": "tool",
    },
    [
        ("check", "left"),
        ("check", "right"),
        ("check", "mid"),
        ("mid", "after"),
        ("left", "end"),
        ("right", "end"),
        ("after", "end"),
        ("end", "tail"),
    ],
)


def scripts(bp: Blueprint, *, all_active: bool = False) -> st.SearchStrategy[Script]:
    edges = [(e.source, e.target) for e in bp.edges]
    parallels = sorted(n.id for n in bp.nodes if isinstance(n, ParallelNode))
    agents = sorted(
        n.id
        for n in bp.nodes
        if isinstance(n, AgentNode) or (isinstance(n, ParallelNode) and n.agent is not None)
    )
    flags = st.just(True) if all_active else st.booleans()
    return st.builds(
        Script,
        active=st.fixed_dictionaries({e: flags for e in edges}),
        fan_out=st.fixed_dictionaries({p: st.integers(0, 3) for p in parallels}),
        turns=st.fixed_dictionaries({a: st.integers(1, 3) for a in agents}),
        seed=st.integers(0, 2**16),
    )


@st.composite
def random_workflows(draw: st.DrawFn) -> tuple[Blueprint, Script]:
    """A random DAG of every node kind (edges only from lower to higher index)."""
    n = draw(st.integers(1, 6))
    kinds = draw(st.lists(st.sampled_from(sorted(NODE_BODIES)), min_size=n, max_size=n))
    pairs = [(f"n{i}", f"n{j}") for i in range(n) for j in range(i + 1, n)]
    edges = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
    bp = blueprint({f"n{i}": kind for i, kind in enumerate(kinds)}, sorted(edges))
    return bp, draw(scripts(bp))


def reached(bp: Blueprint, script: Script) -> set[str]:
    """The oracle: a node runs iff it is a root or a taken edge comes from a node that ran."""
    out: set[str] = set()
    for node in bp.nodes:  # listed in topological order
        sources = bp.incoming.get(node.id, [])
        if not sources or any(s in out and script.active[(s, node.id)] for s in sources):
            out.add(node.id)
    return out


# ------------------------------------------------------------------ the driver


def new_run() -> Run:
    return Run(id="run_test", workflow="wf", blueprint_key="bp", created_at=0.0, updated_at=0.0)


OTHER = StepOutcome(
    output="other",
    continue_with=["zz"],
    completes="zz",
    fan_out=9,
    fail_run="should never apply",
    usage=Usage(prompt_tokens=7, completion_tokens=7),
    cost_usd=1.0,
)


def check_step(
    bp: Blueprint,
    before: Run,
    after: Run,
    key: str,
    outcome: StepOutcome,
    added: list[str],
    now: float,
) -> None:
    """What one applied fold must have done, whatever the step."""
    assert key in before.pending and key not in after.pending
    assert after.steps_run == before.steps_run + 1
    assert after.usage.prompt_tokens == before.usage.prompt_tokens + outcome.usage.prompt_tokens
    assert (
        after.usage.completion_tokens
        == before.usage.completion_tokens + outcome.usage.completion_tokens
    )
    assert after.cost_usd == before.cost_usd + outcome.cost_usd
    assert len(set(added)) == len(added)
    assert set(added) == after.pending - before.pending
    for k in added:
        node = bp.node_map[StepKey.parse(k).node]
        if isinstance(node, JoinNode) and StepKey.parse(k).phase is None:
            # a join starts only once every incoming edge has arrived
            assert set(bp.incoming.get(node.id, [])) <= after.finished | after.skipped
        if StepKey.parse(k).phase == "gather":  # only an empty fan-out asks for it at once
            assert k in outcome.continue_with and outcome.fan_out == 0
    for name in ("skipped", "finished"):
        assert getattr(before, name) <= getattr(after, name), name
    assert before.started <= after.started | after.finished  # started until finished
    assert not after.finished & after.skipped and not after.started & after.finished
    # arrivals stay only where they can still decide: at nodes not started, or joins running
    for target in after.arrivals:
        assert target not in after.finished | after.skipped, target
        assert target not in after.started or isinstance(bp.node_map[target], JoinNode)
    assert after.output is None  # rendering the output is the lifecycle's job
    if after.pending or after.started:  # started, nothing pending: a gather still to come
        wakes = bool(after.pending) and all(StepKey.parse(k).phase == "wake" for k in after.pending)
        assert after.status is (RunStatus.waiting if wakes else RunStatus.running)
        assert after.finished_at is None
    else:
        assert after.status is RunStatus.completed and after.finished_at == now


def deliver(
    bp: Blueprint,
    run: Run,
    key: str,
    outcome: StepOutcome,
    now: float,
    marked: dict[str, set[str]],
) -> list[str]:
    """What the lifecycle does with a step's recorded outcome: fold it (unless it completes a
    fan-out item that adds nothing), then mark a completed item and gather once all are."""
    item = item_completed(outcome)
    before = run.model_copy(deep=True)
    if item is not None and marker_suffices(outcome):
        assert key in run.pending
        added: list[str] = []
    else:
        folded = fold(run, bp, key, outcome, now=now)
        assert folded is not None, f"{key} was pending and not done: the fold must apply it"
        check_step(bp, before, run, key, outcome, folded, now)
        added = folded
    if item is not None:
        marked.setdefault(item.node, set()).add(item.unit)
        if len(marked[item.node]) == run.fan_out[item.node]:
            pending = run.model_copy(deep=True)
            gathered = gather(run, item.node, now=now)
            key = str(StepKey(item.node, phase="gather"))
            assert gathered == [key]
            left = {k for k in pending.pending if StepKey.parse(k).node == item.node}
            assert run.pending == (pending.pending - left) | {key}
            assert run.steps_run == pending.steps_run + len(left)  # the unfolded items
            assert gather(run, item.node, now=now) is None  # once, whoever counts last
            added = [*added, *gathered]
    return added


def simulate(
    bp: Blueprint,
    script: Script,
    choose: Callable[[int], int],
    duplicate: Callable[[list[str]], str | None] = lambda applied: None,
) -> tuple[Run, list[str]]:
    """Deliver every job the fold asks for, in the order ``choose`` picks; check each fold."""
    run = new_run()
    queue = seed(run, bp)
    assert run.pending == set(queue) and run.started == set(bp.roots)
    ever_added = set(queue)
    applied: list[str] = []
    marked: dict[str, set[str]] = {}
    now = 1000.0
    while queue:
        key = queue.pop(choose(len(queue)))
        outcome = script.outcome(bp, key)
        now += 1.0
        added = deliver(bp, run, key, outcome, now, marked)
        assert not ever_added & set(added), "a step key was added twice"
        completed = {script.outcome(bp, k).completes for k in [*applied, key]}
        for k in added:  # a gather comes after every item's last step, each applied once
            step = StepKey.parse(k)
            if step.phase == "gather":
                items = {f"{step.node}[{i}]" for i in range(run.fan_out[step.node])}
                assert items <= completed, items - completed
        ever_added |= set(added)
        applied.append(key)
        queue.extend(added)
        # idempotent: the same key again (with any outcome) changes nothing once folded
        # (an item waiting for its gather is still pending: a redelivery only marks it again)
        snapshot = run.model_copy(deep=True)
        if key not in run.pending:
            assert fold(run, bp, key, outcome, now=now + 0.5) is None
            assert fold(run, bp, key, OTHER, now=now + 0.5) is None
        assert run == snapshot
        old = duplicate(applied)
        if old is not None and old not in run.pending:  # a late redelivery of an earlier job
            assert fold(run, bp, old, script.outcome(bp, old), now=now + 0.5) is None
            assert run == snapshot
    return run, applied


def check_end(bp: Blueprint, script: Script, run: Run, applied: list[str]) -> None:
    nodes = {n.id for n in bp.nodes}
    assert run.status is RunStatus.completed and not run.pending
    assert run.finished | run.skipped == nodes
    assert run.finished == reached(bp, script)
    assert run.steps_run == len(applied)
    usages = [script.usage(k) for k in applied]
    assert run.usage.prompt_tokens == sum(u.prompt_tokens for u, _ in usages)
    assert run.usage.completion_tokens == sum(u.completion_tokens for u, _ in usages)
    assert run.cost_usd == sum(c for _, c in usages)
    assert not run.waiting
    assert not run.started and not run.arrivals  # nothing is left to decide
    for node in bp.nodes:
        if isinstance(node, ParallelNode) and node.id in run.finished:
            assert run.fan_out[node.id] == script.fan_out[node.id]
    # a terminal run is never changed
    snapshot = run.model_copy(deep=True)
    for key in [*applied, "zz", *(str(StepKey(n, phase="gather")) for n in nodes)]:
        assert fold(run, bp, key, OTHER, now=1e9) is None
    assert run == snapshot


def picker(data: st.DataObject) -> Callable[[int], int]:
    return lambda n: data.draw(st.integers(0, n - 1), label="deliver")


def redeliverer(data: st.DataObject) -> Callable[[list[str]], str | None]:
    def pick(applied: list[str]) -> str | None:
        if not data.draw(st.booleans(), label="redeliver"):
            return None
        return data.draw(st.sampled_from(applied), label="which")

    return pick


# ------------------------------------------------------------------ properties


@settings(max_examples=60, deadline=None)
@given(script=scripts(LINEAR, all_active=True), data=st.data())
def test_a_linear_workflow_completes_with_every_node_finished(
    script: Script, data: st.DataObject
) -> None:
    run, applied = simulate(LINEAR, script, picker(data), redeliverer(data))
    check_end(LINEAR, script, run, applied)
    assert run.finished == {n.id for n in LINEAR.nodes} and not run.skipped


@settings(max_examples=150, deadline=None)
@given(script=scripts(DIAMOND), data=st.data())
def test_a_diamond_completes_in_any_delivery_order(script: Script, data: st.DataObject) -> None:
    run, applied = simulate(DIAMOND, script, picker(data), redeliverer(data))
    check_end(DIAMOND, script, run, applied)
    paths = [("check", "left", "end"), ("check", "right", "end"), ("check", "mid", "after", "end")]
    taken = [all(script.active[edge] for edge in pairwise(p)) for p in paths]
    # the join runs iff one path to it is taken all the way, whatever the order of arrival
    assert ("end" in run.finished) is any(taken)
    assert ("tail" in run.finished) is (any(taken) and script.active[("end", "tail")])
    assert not run.arrivals and not run.started  # a finished run keeps no frontier


@settings(max_examples=200, deadline=None)
@given(workflow=random_workflows(), data=st.data())
def test_any_dag_completes_and_every_order_ends_in_the_same_record(
    workflow: tuple[Blueprint, Script], data: st.DataObject
) -> None:
    bp, script = workflow
    run, applied = simulate(bp, script, picker(data), redeliverer(data))
    check_end(bp, script, run, applied)
    # confluence: first-in-first-out delivery ends in the same record (bar timestamps)
    fifo, fifo_applied = simulate(bp, script, lambda n: 0)
    assert sorted(fifo_applied) == sorted(applied)
    ignore = {"finished_at", "updated_at"}
    assert fifo.model_dump(exclude=ignore) == run.model_dump(exclude=ignore)


@settings(max_examples=100, deadline=None)
@given(
    workflow=random_workflows(),
    status=st.sampled_from([RunStatus.failed, RunStatus.cancelled, RunStatus.completed]),
    data=st.data(),
)
def test_a_terminal_run_is_never_changed(
    workflow: tuple[Blueprint, Script], status: RunStatus, data: st.DataObject
) -> None:
    bp, script = workflow
    run = new_run()
    seed(run, bp)
    run.status = status
    snapshot = run.model_copy(deep=True)
    key = data.draw(st.sampled_from(sorted(run.pending)))
    assert fold(run, bp, key, script.outcome(bp, key), now=5.0) is None
    assert run == snapshot


@settings(max_examples=150, deadline=None)
@given(workflow=random_workflows(), data=st.data())
def test_a_key_the_fold_adds_was_not_pending(
    workflow: tuple[Blueprint, Script], data: st.DataObject
) -> None:
    """Whatever an outcome asks for (here: arbitrary continue_with keys mid-run), a key is
    pending once. (That a key is never added again after it folded is the executors' part:
    continue_with names new steps; ``simulate`` checks it for every step the graph makes.)"""
    bp, script = workflow
    _, applied = simulate(bp, script, picker(data))
    run = new_run()
    queue = seed(run, bp)
    stop = data.draw(st.integers(0, len(applied)), label="stop after")
    marked: dict[str, set[str]] = {}
    for key in applied[:stop]:  # replay a prefix of a valid order
        queue.remove(key)
        queue.extend(deliver(bp, run, key, script.outcome(bp, key), 1.0, marked))
    queue = [k for k in queue if k in run.pending]
    if not queue:
        return
    key = data.draw(st.sampled_from(queue), label="key")
    known = sorted(run.pending | {"fresh", "fresh@1"})
    asked = data.draw(st.lists(st.sampled_from(known), max_size=6), label="continue_with")
    outcome = script.outcome(bp, key).model_copy(update={"continue_with": asked})
    before = run.model_copy(deep=True)
    added = fold(run, bp, key, outcome, now=2.0)
    assert added is not None
    assert not set(added) & before.pending
    assert set(added) >= {k for k in asked if k in ("fresh", "fresh@1")}
    assert len(added) == len(set(added))


def test_seed_starts_the_roots_at_their_entry_steps() -> None:
    run = new_run()
    bp = blueprint({"x": "agent", "y": "tool", "z": "join"}, [("x", "z"), ("y", "z")])
    assert sorted(seed(run, bp)) == ["x@0", "y"]
    assert run.started == {"x", "y"} and run.pending == {"x@0", "y"}
    assert run.status is RunStatus.queued and run.steps_run == 0


def test_a_wait_timeout_that_fails_the_run_ends_it_at_now() -> None:
    bp = blueprint({"w": "wait", "t": "tool", "after": "tool"}, [("w", "after")])
    run = new_run()
    seed(run, bp)
    script = Script(active={("w", "after"): True})
    assert fold(run, bp, "w", script.outcome(bp, "w"), now=10.0) == ["w~wake"]
    assert (run.status, run.waiting["w"].signal) == (RunStatus.running, "go")
    assert fold(run, bp, "t", script.outcome(bp, "t"), now=11.0) == []
    assert run.status == RunStatus.waiting  # only the wake job is pending
    timeout = StepOutcome(output={"timed_out": True}, fail_run="wait node 'w' timed out")
    assert fold(run, bp, "w~wake", timeout, now=12.0) == []
    assert (run.status, run.finished_at) == (RunStatus.failed, 12.0)
    assert run.error == RunError(
        step="w~wake", type="WaitTimeout", message="wait node 'w' timed out"
    )
    assert "after" not in run.started and run.steps_run == 3
    snapshot = run.model_copy(deep=True)
    assert fold(run, bp, "after", script.outcome(bp, "after"), now=13.0) is None
    assert run == snapshot


def test_fail_run_sets_status_error_and_time() -> None:
    run = new_run()
    error = RunError(step="s", type="X", message="m", attempts=2)
    fail_run(run, error, 42.0)
    assert (run.status, run.error, run.finished_at) == (RunStatus.failed, error, 42.0)


# ------------------------------------------------------------------ no I/O


ALLOWED_IMPORTS = {
    "__future__": {"annotations"},
    "collections.abc": {"Callable"},
    "agentfn.ports": {"Usage"},  # a value type; no port protocol
    "agentfn.runs": {"MAX_FLAGS", "AgentUsage", "Run", "RunError", "RunStatus", "StepOutcome"},
    "agentfn.steps": {"StepKey", "entry_key", "part_key"},
    "agentfn.workflows": {
        "AgentNode",
        "AggregateNode",
        "Blueprint",
        "JoinNode",
        "LoopNode",
        "ParallelNode",
    },
}


def test_the_fold_module_imports_nothing_that_does_io() -> None:
    tree = ast.parse(inspect.getsource(_fold))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            pytest.fail(f"the fold imports module {', '.join(a.name for a in node.names)}")
        if isinstance(node, ast.ImportFrom):
            assert node.module in ALLOWED_IMPORTS, node.module
            names = {a.name for a in node.names}
            assert names <= ALLOWED_IMPORTS[node.module], names - ALLOWED_IMPORTS[node.module]
    params = inspect.signature(fold).parameters
    assert list(params) == ["run", "bp", "key", "outcome", "now"]


def test_folding_a_whole_run_touches_no_clock_file_or_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = Script(
        active={(e.source, e.target): True for e in DIAMOND.edges},
        fan_out={"left": 2, "mid": 2},
        turns={"right": 2, "mid": 2},
    )
    outcomes = {}  # scripted before the patch: the script itself may use what it likes

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fold did I/O or read a clock")

    expected, applied = simulate(DIAMOND, script, lambda n: 0)
    for key in applied:
        outcomes[key] = script.outcome(DIAMOND, key)
    for name in ("time", "monotonic", "perf_counter", "time_ns", "sleep"):
        monkeypatch.setattr(time, name, forbidden)
    monkeypatch.setattr(builtins, "open", forbidden)
    monkeypatch.setattr("socket.socket", forbidden)
    run = new_run()
    seed(run, DIAMOND)
    marked: dict[str, set[str]] = {}
    for i, key in enumerate(applied):  # the fold and the gather, as the lifecycle applies them
        deliver(DIAMOND, run, key, outcomes[key], float(i), marked)
    monkeypatch.undo()
    assert run.status is RunStatus.completed and run.finished == expected.finished
    assert run.finished_at == float(len(applied) - 1)
