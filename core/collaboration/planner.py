"""A planner agent turns a complex task into a plan: the first half of a collaboration.

The planner is an agent of the team (the one named, else the first by name with capability
``plan``) asked for a JSON plan; its answer is untrusted like any plan, so it is validated
and checked (``check_plan``) before anything runs, and a planner that answers with an
unsound plan is a ``PlanError`` naming what is wrong. Planning is one conversation before
the run exists; its model calls are returned, so the caller can log them with the run and
count their tokens and cost. With the scripted model the plan is deterministic: rules.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentfn.agents import AgentSpec, opening_messages, take_turn
from agentfn.collaboration.plan import MAX_SUBTASKS, Plan, ResultSpec, check_plan
from agentfn.costs import PriceTable
from agentfn.errors import PlanError, StepFailed
from agentfn.model_spec import ModelSpec
from agentfn.ports import ChatReply, ChatRequest, Model, ToolCall, Usage
from agentfn.prompt_log import PromptLog, PromptRecord
from agentfn.workflows import LoadedBlueprint

PLANNER_CAPABILITY = "plan"
PLANNER_STEP = "_planner"  # the prompt log's step name for the planner's calls (@turn)
ModelFactory = Callable[[ModelSpec, Path], Model]


class ComplexTask(BaseModel):
    """A task for the team to split: what to do, and how big a plan may be."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=20_000)
    planner: str | None = Field(
        default=None,
        description="the team's agent that plans; default: the first by name with "
        "capability 'plan'",
    )
    max_subtasks: int = Field(default=50, ge=1, le=MAX_SUBTASKS)
    result: ResultSpec | None = None


@dataclass
class PlannerCall:
    """One model call the planner made, for the prompt log."""

    request: ChatRequest
    reply: ChatReply
    model: str
    latency_ms: float
    cost_usd: float


@dataclass
class Planning:
    plan: Plan
    agent: str
    calls: list[PlannerCall] = field(default_factory=list)

    @property
    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=sum(c.reply.usage.prompt_tokens for c in self.calls),
            completion_tokens=sum(c.reply.usage.completion_tokens for c in self.calls),
        )

    @property
    def cost_usd(self) -> float:
        return sum(c.cost_usd for c in self.calls)

    def summary(self) -> dict[str, Any]:
        """What the run's input keeps about the planning (the view shows it)."""
        return {
            "agent": self.agent,
            "tokens": self.usage.total_tokens,
            "cost_usd": self.cost_usd,
        }


def plan_task(task: ComplexTask, team: LoadedBlueprint, models: ModelFactory) -> Planning:
    """Ask the team's planner for a plan of ``task``; raises ``PlanError`` when there is no
    planner or its answer is not a sound plan (checked against the team before returning)."""
    agents = team.blueprint.agents
    name = _planner(task, agents)
    spec = agents[name].model_copy(update={"output": "json", "tools": []})
    model_spec = team.blueprint.models[spec.model]
    model = models(model_spec, team.base_path)
    prices = PriceTable(team.blueprint.prices)
    calls: list[PlannerCall] = []

    def call_model(request: ChatRequest) -> ChatReply:
        request = request.model_copy(update={"model": model_spec.model})
        started = time.perf_counter()
        reply = model.chat(request)
        used = reply.model or model_spec.model or model.name
        calls.append(
            PlannerCall(
                request=request,
                reply=reply,
                model=used,
                latency_ms=(time.perf_counter() - started) * 1000,
                cost_usd=prices.cost(used, reply.usage),
            )
        )
        return reply

    def no_tools(index: int, call: ToolCall) -> str:
        return f"error: the planner has no tools (asked for {call.name!r})"

    messages = opening_messages(spec, _prompt(task, agents))
    answer: Any = None
    try:
        for turn in range(spec.max_steps):
            result = take_turn(
                name=name,
                spec=spec,
                messages=messages,
                tools=[],
                turn=turn,
                call_model=call_model,
                call_tool=no_tools,
            )
            messages = result.messages
            if result.done:
                answer = result.final
                break
    except StepFailed as exc:
        raise PlanError(f"planner {name!r}: {exc.message}", field="task") from None
    plan = _as_plan(name, answer, task)
    try:
        check_plan(plan, agents)
    except PlanError as exc:
        raise PlanError(
            f"planner {name!r} gave an unsound plan: {exc.message}", field="task"
        ) from None
    return Planning(plan=plan, agent=name, calls=calls)


def log_planning(prompts: PromptLog, run_id: str, planning: Planning, *, at: float) -> None:
    """Put the planner's model calls in the run's prompt log, as ``_planner@<turn>``."""
    for turn, call in enumerate(planning.calls):
        prompts.record(
            PromptRecord(
                run_id=run_id,
                step=f"{PLANNER_STEP}@{turn}",
                agent=planning.agent,
                model=call.model,
                request=call.request,
                reply=call.reply,
                latency_ms=call.latency_ms,
                cost_usd=call.cost_usd,
                at=at,
            )
        )


def _planner(task: ComplexTask, agents: dict[str, AgentSpec]) -> str:
    if task.planner is not None:
        if task.planner not in agents:
            have = ", ".join(sorted(agents)) or "none"
            raise PlanError(
                f"planner {task.planner!r} is not an agent of the team (it has: {have})",
                field="task.planner",
            )
        return task.planner
    able = sorted(n for n, a in agents.items() if PLANNER_CAPABILITY in a.capabilities)
    if not able:
        raise PlanError(
            f"the team has no agent with capability {PLANNER_CAPABILITY!r} to plan the task; "
            "give one that capability or name a planner",
            field="task.planner",
        )
    return able[0]


def _prompt(task: ComplexTask, agents: dict[str, AgentSpec]) -> str:
    skills = sorted({c for a in agents.values() for c in a.capabilities} - {PLANNER_CAPABILITY})
    shape = {
        "subtasks": [
            {"id": "a_name", "task": "what to do", "capability": "a skill", "depends_on": []}
        ]
    }
    return (
        f"Split this task into at most {task.max_subtasks} subtasks.\n"
        f"Task: {task.task}\n"
        f"Skills available: {', '.join(skills) or 'none'}\n"
        f"Answer with JSON only, shaped like {json.dumps(shape)}; depends_on lists the ids "
        "of subtasks whose results a subtask needs."
    )


def _as_plan(name: str, answer: Any, task: ComplexTask) -> Plan:
    subtasks = answer.get("subtasks") if isinstance(answer, dict) else answer
    if isinstance(subtasks, list) and len(subtasks) > task.max_subtasks:
        raise PlanError(
            f"planner {name!r} gave {len(subtasks)} subtasks, more than max_subtasks="
            f"{task.max_subtasks}",
            field="task.max_subtasks",
        )
    try:
        return Plan.model_validate({"subtasks": subtasks, "result": task.result})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PlanError(
            f"planner {name!r} gave no usable plan: {where}: {first['msg']}", field="task"
        ) from None
