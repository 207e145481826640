"""Per-agent concurrency limits: at most ``max_concurrency`` of an agent's units at work in a
run; the rest are held in the run record and sent, in order, as slots free up."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from agentfn.collaboration import Plan, collaboration_blueprint
from agentfn.engine import Engine
from agentfn.errors import BlueprintError
from agentfn.events.cloudevents import job_of
from agentfn.ports import QueueMessage
from agentfn.runs import RunStatus
from agentfn.workflows import RetryPolicy, load_blueprint
from tests.support.collaboration_team import load_team
from tests.support.engine_harness import drain, make_engine, project


def sent(engine: Engine) -> list[QueueMessage]:
    """Every job the queue delivers now (each is handled or released by the caller)."""
    return engine.queue.receive(100, visibility_timeout=engine.lease_s)


def steps_of(messages: list[QueueMessage]) -> list[str]:
    return sorted(job_of(m.body)["step"] for m in messages)


def limited(tmp_path: Path, agent: str, body: str) -> Path:
    wf = project(tmp_path, body)
    text = wf.read_text()
    line = next(x for x in text.splitlines() if x.startswith(f"  {agent}: {{"))
    wf.write_text(text.replace(line, line[:-1] + ", max_concurrency: 2}"))
    return wf


def test_a_fan_out_sends_no_more_items_than_the_agent_may_work_on(tmp_path: Path) -> None:
    wf = limited(
        tmp_path,
        "echo",
        """
        nodes:
          - {id: fan, type: parallel, for_each: "input.items", agent: echo}
        """,
    )
    engine = make_engine(tmp_path)
    run = engine.start(load_blueprint(wf), {"items": ["a", "b", "c", "d", "e"]})
    [dispatch] = sent(engine)
    engine.handle(dispatch)
    first = sent(engine)
    assert steps_of(first) == ["fan[0]@0", "fan[1]@0"]  # two slots; three items held
    held = engine.store.get(run.id)
    assert held.held == ["fan[2]@0", "fan[3]@0", "fan[4]@0"] and held.slots == {
        "echo": ["fan[0]", "fan[1]"]
    }
    engine.handle(first[0])  # one item done: its slot goes to the first held item
    assert steps_of(sent(engine)) == ["fan[2]@0"]
    done = drain(engine, run.id)
    assert done.status is RunStatus.completed
    assert done.output == {"fan": [f"echo: {x}" for x in "abcde"]}
    assert done.held == [] and done.slots == {}


def test_an_agent_keeps_its_slot_across_its_turns(tmp_path: Path) -> None:
    wf = limited(
        tmp_path,
        "helper",
        """
        nodes:
          - {id: fan, type: parallel, for_each: "input.items", agent: helper, prompt: "label {{ item }}"}
        """,
    )
    text = wf.read_text().replace("max_concurrency: 2}", "max_concurrency: 1}")
    wf.write_text(text)
    engine = make_engine(tmp_path)
    run = engine.start(load_blueprint(wf), {"items": ["x", "y"]})
    engine.handle(sent(engine)[0])
    [turn0] = sent(engine)
    assert job_of(turn0.body)["step"] == "fan[0]@0"
    engine.handle(turn0)  # asks for a tool: the item's next turn, not the next item
    assert steps_of(sent_and_release(engine)) == ["fan[0]@1"]
    done = drain(engine, run.id)
    assert done.status is RunStatus.completed
    assert done.output == {"fan": ["helper saw X", "helper saw Y"]}


def sent_and_release(engine: Engine) -> list[QueueMessage]:
    messages = sent(engine)
    for m in messages:
        engine.queue.retry(m, delay=0)
    return messages


PLAN = Plan.model_validate(
    {
        "subtasks": [
            {"id": f"t{i}", "task": f"Translate {i}", "capability": "translate"} for i in range(4)
        ]
        + [{"id": "w", "task": "Write", "capability": "write"}]
    }
)


def test_a_collaboration_gives_a_limited_agent_one_subtask_at_a_time(tmp_path: Path) -> None:
    team = load_team(tmp_path)
    team.blueprint.agents["translator"].max_concurrency = 1
    loaded, given = collaboration_blueprint(PLAN, team)
    engine = make_engine(tmp_path)
    run = engine.start(loaded, given)
    assert steps_of(sent_and_release(engine)) == ["t0@0", "w@0"]  # the writer is not limited
    done = drain(engine, run.id)
    assert done.status is RunStatus.completed
    order = sorted((r.started_at, r.key) for r in engine.store.steps(run.id) if r.key[0] == "t")
    assert [k for _, k in order] == ["t0@0", "t1@0", "t2@0", "t3@0"]  # in plan order
    finished = {r.key: r for r in engine.store.steps(run.id)}
    for a, b in itertools.pairwise(order):
        end = finished[a[1]].finished_at
        assert end is not None and end <= b[0]  # never two at once


def test_a_unit_that_fails_for_good_frees_its_slot(tmp_path: Path) -> None:
    # No rule answers "Translate 1" and there is no default: t1 fails (once: no retries).
    rules = """
rules:
  - {agent: translator, match: "Translate [023]", reply: {content: fine}}
  - {match: Write, reply: {content: written}}
"""
    team = load_team(tmp_path, rules)
    team.blueprint.agents["translator"].max_concurrency = 1
    plan = PLAN.model_copy(deep=True)
    plan.subtasks[1].retry = RetryPolicy(max_attempts=1)
    loaded, given = collaboration_blueprint(plan, team)
    engine = make_engine(tmp_path)
    done = drain(engine, engine.start(loaded, given).id, timeout_s=60)
    assert done.status is RunStatus.completed and set(done.failures) == {"t1"}
    assert done.output == {"t0": "fine", "t2": "fine", "t3": "fine", "w": "written"}
    assert done.held == [] and done.slots == {}


@pytest.mark.parametrize("value", [0, 1001, "many"])
def test_a_bad_limit_is_refused_with_its_line(tmp_path: Path, value: object) -> None:
    wf = project(tmp_path, "nodes:\n  - {id: a, type: agent, agent: echo}\n")
    text = wf.read_text().replace(
        "echo: {instructions: Repeat the prompt.}",
        f"echo: {{instructions: Repeat the prompt., max_concurrency: {value}}}",
    )
    wf.write_text(text)
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(wf)
    assert "agents.echo.max_concurrency" in str(caught.value)
