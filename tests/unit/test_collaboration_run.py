"""A plan runs on the engine as a workflow: every subtask a step, dependencies honoured, the
results of the last subtasks as the run's output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentfn.collaboration import Plan, PlanError, collaboration_blueprint
from agentfn.runs import RunStatus
from agentfn.workflows import LoadedBlueprint
from tests.support.collaboration_team import load_team
from tests.support.engine_harness import drain, make_engine


def team(tmp_path: Path) -> LoadedBlueprint:
    return load_team(tmp_path)


def plan(*subtasks: tuple[str, str, list[str]]) -> Plan:
    return Plan.model_validate(
        {
            "subtasks": [
                {"id": i, "task": f"task {i} {{{{ run.id }}}}", "capability": c, "depends_on": d}
                for i, c, d in subtasks
            ]
        }
    )


def test_a_plan_runs_with_its_dependencies_and_gives_the_last_results(tmp_path: Path) -> None:
    p = plan(
        ("intro", "write", []),
        ("body", "write", []),
        ("review", "review", ["intro", "body"]),
        ("final", "write", ["review"]),
        ("notes", "write", ["intro"]),
    )
    loaded, given = collaboration_blueprint(p, team(tmp_path))
    engine = make_engine(tmp_path)
    run = engine.start(loaded, given)
    done = drain(engine, run.id)
    assert done.status is RunStatus.completed, done.error
    assert set(done.output) == {"final", "notes"}  # what nothing depends on
    # A subtask's text is data, never a template: "{{ run.id }}" reaches the model as written.
    assert done.output["notes"].startswith("done: task notes {{ run.id }}")
    assert "The result of intro:\ndone: task intro {{ run.id }}" in done.output["notes"]
    review = engine.store.node_output(run.id, "review")
    assert "The result of intro" in review and "The result of body" in review
    assert "The result of review:\ndone: task review" in done.output["final"]
    prompts = {p.step: p.agent for p in engine.prompts.entries(run.id)}
    # Dependency order, ready ones in plan order (intro, body, review, final, notes), each to
    # the least-loaded agent with the skill, ties by name: the writers take turns.
    assert prompts == {
        "intro@0": "writer-a",
        "body@0": "writer-b",
        "review@0": "critic",
        "final@0": "writer-a",
        "notes@0": "writer-b",
    }
    assert done.steps_run == 6  # five subtasks and the join in front of "review"


def test_a_plan_that_cannot_run_is_refused_before_anything_runs(tmp_path: Path) -> None:
    cyclic = plan(("a", "write", ["b"]), ("b", "write", ["a"]))
    with pytest.raises(PlanError, match="a -> b -> a"):
        collaboration_blueprint(cyclic, team(tmp_path))
    unknown = plan(("a", "sing", []))
    with pytest.raises(PlanError, match="sing"):
        collaboration_blueprint(unknown, team(tmp_path))


def test_a_plan_too_big_for_a_workflow_is_refused(tmp_path: Path) -> None:
    subs: list[tuple[str, str, list[str]]] = [("s0", "write", []), ("s1", "write", [])]
    subs += [(f"s{i}", "write", [f"s{i - 1}", f"s{i - 2}"]) for i in range(2, 600)]
    with pytest.raises(PlanError, match="more than the 1000") as caught:
        collaboration_blueprint(plan(*subs), team(tmp_path))
    assert caught.value.field == "subtasks"


def test_generated_join_names_never_take_a_subtask_id(tmp_path: Path) -> None:
    p = plan(("a", "write", []), ("b", "write", []), ("_after_3", "write", ["a", "b"]))
    loaded, _ = collaboration_blueprint(p, team(tmp_path))
    ids = [n.id for n in loaded.blueprint.nodes]
    assert len(ids) == len(set(ids)) == 4
    kinds: dict[str, Any] = {n.id: n.type for n in loaded.blueprint.nodes}
    assert kinds["_after_3"] == "agent" and kinds["__after_3"] == "join"


VOTE_RULES = """
rules:
  - {agent: writer-a, reply: {content: "Paris"}}
  - {agent: writer-b, reply: {content: " paris "}}
  - {agent: translator, reply: {content: "Lyon"}}
  - {agent: critic, match: "answers", reply: {content: "the critic picks Paris"}}
default: {content: "done: {last_user}"}
"""


def answers(result: dict[str, Any] | None) -> Plan:
    return Plan.model_validate(
        {
            "subtasks": [
                {"id": "a1", "task": "Capital?", "capability": "write"},
                {"id": "a2", "task": "Capital?", "capability": "write"},
                {"id": "a3", "task": "Capital?", "capability": "translate"},
            ],
            "result": result,
        }
    )


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"strategy": "vote"}, {"result": "Paris", "candidates": 3, "strategy": "vote"}),
        (
            {"strategy": "concatenate", "separator": "/"},
            {"result": "Paris/ paris /Lyon", "candidates": 3, "strategy": "concatenate"},
        ),
        (
            {"strategy": "judge", "judge": "critic"},
            {"result": "the critic picks Paris", "candidates": 3, "strategy": "judge"},
        ),
    ],
)
def test_the_result_compiler_turns_the_final_results_into_one(
    tmp_path: Path, result: dict[str, Any], expected: dict[str, Any]
) -> None:
    loaded, given = collaboration_blueprint(answers(result), load_team(tmp_path, VOTE_RULES))
    engine = make_engine(tmp_path)
    done = drain(engine, engine.start(loaded, given).id)
    assert done.status is RunStatus.completed, done.error
    assert {k: done.output[k] for k in expected} == expected
    if result["strategy"] == "vote":
        assert [v["count"] for v in done.output["votes"]] == [2, 1]


def test_the_result_compiler_uses_what_survived_a_failed_subtask(tmp_path: Path) -> None:
    # No rule answers the translator and there is no default: its subtask fails.
    rules = """
rules:
  - {agent: writer-a, reply: {content: "Paris"}}
  - {agent: writer-b, reply: {content: " paris "}}
"""
    loaded, given = collaboration_blueprint(
        answers({"strategy": "concatenate", "separator": "|"}), load_team(tmp_path, rules)
    )
    engine = make_engine(tmp_path)
    done = drain(engine, engine.start(loaded, given).id, timeout_s=60)
    assert done.status is RunStatus.completed and set(done.failures) == {"a3"}
    assert done.output["result"] == "Paris| paris " and done.output["candidates"] == 2


@pytest.mark.parametrize(
    ("result", "field", "message"),
    [
        ({"strategy": "judge"}, "result.judge", "strategy 'judge' needs a judge agent"),
        ({"strategy": "best_score"}, "result.score", "needs a score tool"),
        (
            {"strategy": "judge", "judge": "nobody"},
            "result.judge",
            "judge 'nobody' is not an agent of the team",
        ),
    ],
)
def test_a_result_compiler_that_cannot_run_is_refused(
    tmp_path: Path, result: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(PlanError) as caught:
        collaboration_blueprint(answers(result), team(tmp_path))
    assert caught.value.field == field and message in caught.value.message
