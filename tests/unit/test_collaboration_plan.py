"""Plans are checked before anything runs, and assigned deterministically by capability and
load."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pydantic import ValidationError

from agentfn.agents import AgentSpec
from agentfn.collaboration import Plan, PlanError, assign_agents, check_plan, topological_order

TEAM = {
    "writer-b": AgentSpec(instructions="Write.", capabilities=["write"]),
    "writer-a": AgentSpec(instructions="Write.", capabilities=["write"]),
    "analyst": AgentSpec(instructions="Analyse.", capabilities=["analyse", "write"]),
    "critic": AgentSpec(instructions="Review.", capabilities=["review"]),
}


def plan(*subtasks: dict[str, Any]) -> Plan:
    return Plan.model_validate({"subtasks": list(subtasks)})


def sub(id: str, capability: str = "write", *deps: str) -> dict[str, Any]:
    return {"id": id, "task": f"do {id}", "capability": capability, "depends_on": list(deps)}


def refusal(p: Plan) -> PlanError:
    with pytest.raises(PlanError) as caught:
        check_plan(p, TEAM)
    return caught.value


def test_a_sound_plan_passes_and_orders_every_subtask_after_its_dependencies() -> None:
    p = plan(sub("draft"), sub("facts", "analyse"), sub("edit", "review", "draft", "facts"))
    check_plan(p, TEAM)
    assert topological_order(p) == ["draft", "facts", "edit"]


def test_a_cycle_is_refused_and_named() -> None:
    err = refusal(plan(sub("a", "write", "c"), sub("b", "write", "a"), sub("c", "write", "b")))
    assert "a -> c -> b -> a" in err.message
    assert err.field == "subtasks[0].depends_on"


def test_a_subtask_depending_on_itself_is_a_cycle() -> None:
    err = refusal(plan(sub("solo", "write", "solo")))
    assert "solo -> solo" in err.message


def test_a_missing_dependency_is_refused_naming_the_subtask_and_the_dependency() -> None:
    err = refusal(plan(sub("a"), sub("b", "write", "a", "ghost")))
    assert err.field == "subtasks[1].depends_on[1]"
    assert "'b'" in err.message and "'ghost'" in err.message


def test_an_unknown_capability_is_refused_with_what_the_team_has() -> None:
    err = refusal(plan(sub("a"), sub("translate", "translate")))
    assert err.field == "subtasks[1].capability"
    assert "'translate'" in err.message and "analyse, review, write" in err.message


def test_a_duplicate_id_and_a_duplicate_dependency_are_refused() -> None:
    assert refusal(plan(sub("a"), sub("a"))).field == "subtasks[1].id"
    assert refusal(plan(sub("a"), sub("b", "write", "a", "a"))).field == "subtasks[1].depends_on"


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "has space", "task": "x", "capability": "write"},
        {"id": "a", "task": "", "capability": "write"},
        {"id": "a", "task": "x", "capability": "no spaces allowed"},
        {"id": "a", "task": "x", "capability": "write", "extra": 1},
    ],
)
def test_malformed_subtasks_are_refused_by_the_model(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        plan(bad)


def test_an_empty_or_oversized_plan_is_refused() -> None:
    with pytest.raises(ValidationError):
        Plan.model_validate({"subtasks": []})
    with pytest.raises(ValidationError):
        plan(*(sub(f"s{i}") for i in range(1001)))


def test_work_of_one_skill_is_shared_evenly_and_ties_go_by_name() -> None:
    p = plan(*(sub(f"w{i}") for i in range(7)), sub("r", "review", "w0"))
    check_plan(p, TEAM)
    got = assign_agents(p, TEAM)
    assert got["r"] == "critic"
    writers = [got[f"w{i}"] for i in range(7)]
    # analyst, writer-a, writer-b all write: round by round in name order
    assert writers == ["analyst", "writer-a", "writer-b"] * 2 + ["analyst"]


def test_assignment_is_deterministic_and_balanced_on_random_plans() -> None:
    rng = random.Random(7)
    for _ in range(50):
        n = rng.randint(1, 40)
        subs = [
            sub(
                f"s{i}",
                rng.choice(["write", "analyse", "review"]),
                *{f"s{j}" for j in range(i) if rng.random() < 0.2},
            )
            for i in range(n)
        ]
        p = plan(*subs)
        check_plan(p, TEAM)
        first = assign_agents(p, TEAM)
        assert first == assign_agents(p, TEAM)
        order = topological_order(p)
        assert sorted(order) == sorted(s["id"] for s in subs)
        for s in subs:  # dependencies first
            assert all(order.index(d) < order.index(s["id"]) for d in s["depends_on"])
        for s in subs:  # an agent with the capability
            assert s["capability"] in TEAM[first[s["id"]]].capabilities
        # Two agents with the same one skill never drift more than one subtask apart.
        loads = [list(first.values()).count(name) for name in ("writer-a", "writer-b")]
        assert abs(loads[0] - loads[1]) <= 1
