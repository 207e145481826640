"""A collaboration keeps what succeeded when a subtask fails for good, and its status view
names every subtask's state, agent, attempts, tokens, cost and timing, and each agent's load."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from agentfn.collaboration import Plan, agent_loads, collaboration_blueprint, collaboration_view
from agentfn.errors import NotFound
from agentfn.events.cloudevents import job_of
from agentfn.runs import RunStatus
from agentfn.workflows import LoadedBlueprint, load_blueprint
from tests.support.engine_harness import drain, make_engine

TEAM = """
name: team
models:
  default: {provider: scripted, rules: rules.yaml, max_retries: 1}
prices:
  scripted: {input_per_mtok: 1000, output_per_mtok: 2000}
agents:
  writer: {instructions: Write., capabilities: [write]}
  translator: {instructions: Translate., capabilities: [translate]}
  critic: {instructions: Review., capabilities: [review]}
  idle: {instructions: Wait., capabilities: [sing]}
nodes:
  - {id: unused, type: agent, agent: critic}
"""
# The translator's model is down: every call it makes fails, as a throttled provider's would.
RULES = """
rules:
  - agent: translator
    reply: {error: "overloaded, try again later", transient: true}
  - agent: writer
    reply: {content: "wrote: {last_user}"}
  - agent: critic
    reply: {content: "reviewed"}
"""
FAST_RETRY: dict[str, Any] = {"max_attempts": 2, "backoff": {"base_s": 0, "max_s": 0}}


def team(tmp_path: Path) -> LoadedBlueprint:
    (tmp_path / "rules.yaml").write_text(textwrap.dedent(RULES))
    (tmp_path / "team.yaml").write_text(textwrap.dedent(TEAM))
    return load_blueprint(tmp_path / "team.yaml")


def plan(*subtasks: tuple[str, str, list[str]]) -> Plan:
    return Plan.model_validate(
        {
            "subtasks": [
                {
                    "id": i,
                    "task": f"task {i}",
                    "capability": c,
                    "depends_on": d,
                    "retry": FAST_RETRY,
                }
                for i, c, d in subtasks
            ]
        }
    )


def test_a_failing_subtask_is_retried_then_named_and_the_other_results_survive(
    tmp_path: Path,
) -> None:
    p = plan(
        ("draft", "write", []),
        ("german", "translate", ["draft"]),
        ("notes", "write", ["draft"]),
        ("merge", "review", ["german", "notes"]),  # needs the failed one: skipped
        ("after", "write", ["merge"]),  # further down the dead path: skipped too
        ("summary", "review", ["notes"]),
    )
    loaded, given = collaboration_blueprint(p, team(tmp_path))
    engine = make_engine(tmp_path)
    run = engine.start(loaded, given)
    done = drain(engine, run.id)

    assert done.status is RunStatus.completed, done.error
    assert done.error is None
    assert set(done.failures) == {"german"}
    assert done.failures["german"].attempts == 2  # its retry policy: two tries
    assert done.failures["german"].type == "TransientModelError"
    assert done.skipped >= {"merge", "after"}
    assert done.output == {"summary": "reviewed"}  # the completed sinks
    assert engine.store.node_output(run.id, "notes").startswith("wrote: task notes")
    dead = engine.queue.dead_letters()
    assert [job_of(d.body)["step"] for d in dead] == ["german@0"]

    view = collaboration_view(engine.store, run.id)
    assert view.status == "partially_failed"
    by_id = {s.id: s for s in view.subtasks}
    assert [s.id for s in view.subtasks] == [
        "draft",
        "german",
        "notes",
        "merge",
        "after",
        "summary",
    ]
    assert {k: v for k, v in view.progress.items() if v} == {
        "completed": 3,
        "failed": 1,
        "skipped": 2,
    }
    german = by_id["german"]
    assert (german.status, german.agent, german.attempts, german.steps) == (
        "failed",
        "translator",
        2,
        1,
    )
    assert german.error is not None and german.error.startswith("TransientModelError: ")
    assert by_id["merge"].error == "not run: dependency german did not complete"
    assert by_id["after"].error == "not run: dependency merge did not complete"
    draft = by_id["draft"]
    assert (draft.status, draft.agent, draft.attempts, draft.steps) == ("completed", "writer", 1, 1)
    assert draft.tokens > 0 and draft.cost_usd > 0
    assert draft.started_at is not None and draft.finished_at is not None
    assert draft.started_at <= draft.finished_at and draft.duration_ms > 0
    assert by_id["merge"].started_at is None and by_id["merge"].attempts == 0
    assert view.tokens == sum(s.tokens for s in view.subtasks) == done.usage.total_tokens
    assert view.cost_usd == pytest.approx(sum(s.cost_usd for s in view.subtasks))

    loads = {a.agent: a for a in agent_loads(engine.store, view)}
    assert set(loads) == {"writer", "translator", "critic", "idle"}
    assert (loads["writer"].assigned, loads["writer"].completed) == (3, 2)
    assert loads["writer"].subtasks == ["draft", "notes", "after"]
    assert (loads["translator"].assigned, loads["translator"].failed) == (1, 1)
    assert loads["idle"].assigned == 0 and loads["idle"].capabilities == ["sing"]
    assert loads["writer"].tokens == sum(by_id[s].tokens for s in loads["writer"].subtasks)


def test_a_collaboration_in_flight_shows_what_is_waiting_queued_and_done(tmp_path: Path) -> None:
    p = plan(("a", "write", []), ("b", "write", ["a"]), ("c", "review", ["b"]))
    loaded, given = collaboration_blueprint(p, team(tmp_path))
    engine = make_engine(tmp_path)
    run = engine.start(loaded, given)
    first = collaboration_view(engine.store, run.id)
    assert first.status == "queued"  # the run's own status: nothing ran yet
    assert [s.status for s in first.subtasks] == ["queued", "waiting", "waiting"]
    (message,) = engine.queue.receive(1, visibility_timeout=5)
    engine.handle(message)
    after = collaboration_view(engine.store, run.id)
    assert [s.status for s in after.subtasks] == ["completed", "queued", "waiting"]
    engine.cancel(run.id)
    stopped = collaboration_view(engine.store, run.id)
    assert stopped.status == "cancelled"
    assert [s.status for s in stopped.subtasks] == ["completed", "stopped", "stopped"]


def test_a_run_that_is_not_a_collaboration_has_no_collaboration_view(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    bp = team(tmp_path)
    run = engine.start(bp, {})
    with pytest.raises(NotFound, match="not a collaboration"):
        collaboration_view(engine.store, run.id)
