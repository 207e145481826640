"""A planner agent turns a complex task into a plan, checked like a written one before it
runs; its calls are logged with the run and counted in the collaboration's tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentfn.adapters.local.env_secrets import EnvSecretStore
from agentfn.adapters.models.factory import build_model
from agentfn.collaboration import PlanError, collaboration_blueprint, collaboration_view
from agentfn.collaboration.planner import ComplexTask, log_planning, plan_task
from agentfn.model_spec import ModelSpec
from agentfn.ports import Model
from agentfn.runs import RunStatus
from agentfn.workflows import LoadedBlueprint, load_blueprint
from tests.support.collaboration_team import TEAM
from tests.support.engine_harness import drain, make_engine

PLANNED = {
    "subtasks": [
        {"id": "draft", "task": "Draft it.", "capability": "write"},
        {"id": "check", "task": "Check it.", "capability": "review", "depends_on": ["draft"]},
    ]
}


def models(spec: ModelSpec, base_dir: Path) -> Model:
    return build_model(spec, secrets=EnvSecretStore(None), base_dir=base_dir)


def planning_team(tmp_path: Path, answer: Any, *, capability: str = "plan") -> LoadedBlueprint:
    folder = tmp_path / "team"
    folder.mkdir(exist_ok=True)
    content = answer if isinstance(answer, str) else json.dumps(answer)
    (folder / "rules.yaml").write_text(
        "rules:\n"
        f"  - agent: planner\n    match: 'Split this task'\n    reply: {{content: {json.dumps(content)}}}\n"
        'default: {content: "done: {last_user}"}\n'
    )
    team = TEAM.replace(
        "agents:\n", f"agents:\n  planner: {{instructions: Plan., capabilities: [{capability}]}}\n"
    )
    (folder / "team.yaml").write_text(team)
    return load_blueprint(folder / "team.yaml")


def test_a_planner_agent_plans_the_task_and_the_plan_runs(tmp_path: Path) -> None:
    team = planning_team(tmp_path, PLANNED)
    planning = plan_task(ComplexTask(task="Write a launch note."), team, models)
    assert planning.agent == "planner"
    assert [s.id for s in planning.plan.subtasks] == ["draft", "check"]
    [call] = planning.calls
    prompt = call.request.messages[-1].content or ""
    assert "Task: Write a launch note." in prompt and "at most 50 subtasks" in prompt
    assert "Skills available: review, translate, write" in prompt  # the team's, not "plan"
    loaded, given = collaboration_blueprint(planning.plan, team, planner=planning.summary())
    engine = make_engine(tmp_path)
    run = engine.start(loaded, given)
    log_planning(engine.prompts, run.id, planning, at=run.created_at)
    done = drain(engine, run.id)
    assert done.status is RunStatus.completed
    assert done.output["check"].startswith("done: Check it.")
    view = collaboration_view(engine.store, run.id)
    assert view.planner is not None and view.planner.agent == "planner"
    assert view.planner.tokens == planning.usage.total_tokens > 0
    assert view.tokens == done.usage.total_tokens + planning.usage.total_tokens
    steps = [p.step for p in engine.prompts.entries(run.id)]
    assert "_planner@0" in steps and "draft@0" in steps


@pytest.mark.parametrize(
    ("answer", "task", "field", "message"),
    [
        (
            {"subtasks": [
                {"id": "a", "task": "A.", "capability": "write", "depends_on": ["b"]},
                {"id": "b", "task": "B.", "capability": "write", "depends_on": ["a"]},
            ]},
            {},
            "task",
            "planner 'planner' gave an unsound plan: the plan has a cycle: a -> b -> a",
        ),
        (
            {"subtasks": [{"id": "a", "task": "A.", "capability": "sing"}]},
            {},
            "task",
            "needs capability 'sing', which no agent of the team has",
        ),
        (
            {"subtasks": [{"id": f"s{i}", "task": "x", "capability": "write"} for i in range(3)]},
            {"max_subtasks": 2},
            "task.max_subtasks",
            "planner 'planner' gave 3 subtasks, more than max_subtasks=2",
        ),
        (
            {"steps": []},
            {},
            "task",
            "planner 'planner' gave no usable plan: subtasks: Input should be a valid list",
        ),
        ("not json at all", {}, "task", "must answer in JSON but did not within max_steps"),
        (PLANNED, {"planner": "nobody"}, "task.planner", "planner 'nobody' is not an agent"),
    ],
)  # fmt: skip
def test_a_planner_that_cannot_plan_is_refused_before_anything_runs(
    tmp_path: Path, answer: Any, task: dict[str, Any], field: str, message: str
) -> None:
    team = planning_team(tmp_path, answer)
    with pytest.raises(PlanError) as caught:
        plan_task(ComplexTask(task="Do it.", **task), team, models)
    assert caught.value.field == field and message in caught.value.message


def test_a_team_without_a_planner_is_told_how_to_get_one(tmp_path: Path) -> None:
    team = planning_team(tmp_path, PLANNED, capability="write")
    with pytest.raises(PlanError) as caught:
        plan_task(ComplexTask(task="Do it."), team, models)
    assert caught.value.field == "task.planner"
    assert "no agent with capability 'plan'" in caught.value.message
