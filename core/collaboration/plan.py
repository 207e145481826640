"""A plan: subtasks, what each needs (a capability) and what each waits for (its dependencies).

A plan is untrusted input (a user's, or a planner agent's reply), so ``check_plan`` refuses
everything that cannot run before anything does: a duplicate or malformed id, a dependency on
a subtask that is not in the plan, a cycle (named, as ``a -> b -> a``), and a capability no
agent of the team has. Each refusal names the subtask and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agentfn.agents import AgentSpec
from agentfn.errors import PlanError
from agentfn.workflows import NodeId, RetryPolicy

MAX_SUBTASKS = 1000  # a plan's size is bounded before anything is scheduled
CAPABILITY = r"^[A-Za-z0-9_.-]{1,64}$"


class Subtask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: NodeId
    task: str = Field(min_length=1, max_length=20_000)
    capability: str = Field(pattern=CAPABILITY)
    depends_on: list[str] = Field(default_factory=list, max_length=MAX_SUBTASKS)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)


class ResultSpec(BaseModel):
    """How the final results (of the subtasks nothing depends on) become one: an aggregate
    node's strategy (docs/blueprints.md), with a judge agent of the team or a score tool."""

    model_config = ConfigDict(extra="forbid")

    strategy: Literal["concatenate", "vote", "judge", "best_score"]
    judge: str | None = Field(default=None, description="the team's agent, for judge")
    score: str | None = Field(default=None, description="a tool of the team, for best_score")
    separator: str = Field(default="\n\n", max_length=100)


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subtasks: list[Subtask] = Field(min_length=1, max_length=MAX_SUBTASKS)
    result: ResultSpec | None = Field(
        default=None,
        description="compile the final results into one; without it the output is each "
        "final subtask's result",
    )


def check_plan(plan: Plan, agents: Mapping[str, AgentSpec]) -> None:
    """Raise :class:`PlanError` for the first thing that keeps ``plan`` from running."""
    index: dict[str, int] = {}
    for i, sub in enumerate(plan.subtasks):
        if sub.id in index:
            raise PlanError(
                f"subtask {sub.id!r} is declared twice (subtasks {index[sub.id]} and {i})",
                field=f"subtasks[{i}].id",
            )
        index[sub.id] = i
    offered = {c for spec in agents.values() for c in spec.capabilities}
    for i, sub in enumerate(plan.subtasks):
        for j, dep in enumerate(sub.depends_on):
            if dep not in index:
                raise PlanError(
                    f"subtask {sub.id!r} depends on {dep!r}, which is not in the plan",
                    field=f"subtasks[{i}].depends_on[{j}]",
                )
        if len(set(sub.depends_on)) != len(sub.depends_on):
            raise PlanError(
                f"subtask {sub.id!r} lists a dependency twice", field=f"subtasks[{i}].depends_on"
            )
        if sub.capability not in offered:
            have = ", ".join(sorted(offered)) or "none"
            raise PlanError(
                f"subtask {sub.id!r} needs capability {sub.capability!r}, which no agent of "
                f"the team has (they have: {have})",
                field=f"subtasks[{i}].capability",
            )
    if plan.result is not None:
        _check_result(plan.result, agents)
    cycle = _find_cycle(plan)
    if cycle is not None:
        raise PlanError(
            f"the plan has a cycle: {' -> '.join(cycle)}",
            field=f"subtasks[{index[cycle[0]]}].depends_on",
        )


def _check_result(spec: ResultSpec, agents: Mapping[str, AgentSpec]) -> None:
    if spec.strategy == "judge" and spec.judge is None:
        raise PlanError("strategy 'judge' needs a judge agent", field="result.judge")
    if spec.strategy == "best_score" and spec.score is None:
        raise PlanError("strategy 'best_score' needs a score tool", field="result.score")
    if spec.judge is not None and spec.judge not in agents:
        have = ", ".join(sorted(agents)) or "none"
        raise PlanError(
            f"judge {spec.judge!r} is not an agent of the team (it has: {have})",
            field="result.judge",
        )


def final_subtasks(plan: Plan) -> list[str]:
    """The subtasks nothing depends on, in plan order: their results are the plan's."""
    needed = {dep for s in plan.subtasks for dep in s.depends_on}
    return [s.id for s in plan.subtasks if s.id not in needed]


def topological_order(plan: Plan) -> list[str]:
    """Subtask ids, every one after its dependencies; among the ready, in plan order (so the
    order, and everything decided along it, is deterministic). The plan must be checked."""
    position = {s.id: i for i, s in enumerate(plan.subtasks)}
    waiting = {s.id: len(s.depends_on) for s in plan.subtasks}
    dependents: dict[str, list[str]] = {s.id: [] for s in plan.subtasks}
    for sub in plan.subtasks:
        for dep in sub.depends_on:
            dependents[dep].append(sub.id)
    ready = sorted((i for i, n in waiting.items() if n == 0), key=position.__getitem__)
    out: list[str] = []
    while ready:
        current = ready.pop(0)
        out.append(current)
        for nxt in dependents[current]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                ready.append(nxt)
        ready.sort(key=position.__getitem__)
    return out


def _find_cycle(plan: Plan) -> list[str] | None:
    """A dependency cycle as the path that closes it (``[a, b, a]``), or None."""
    deps = {s.id: s.depends_on for s in plan.subtasks}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in deps:
        if root in state:
            continue
        path: list[str] = [root]
        stack = [iter(deps[root])]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(deps[nxt]))
    return None
