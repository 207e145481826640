"""Replays with changes, and the step-by-step difference between two runs.

A replay runs a run's blueprint snapshot again on its input. Without changes it is served from
the original's prompt log where the conversation is the same (deterministic and free); with a
change — another model, temperature or instructions — the models are called again (a reply
the old model gave is no answer of the new one), and :func:`diff_runs` shows what changed:
every node's output, and every step's status, tokens, cost and time.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentfn.errors import ValidationFailed
from agentfn.runs import Run, RunStore, StepRecord
from agentfn.workflows import LoadedBlueprint


class ReplayChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="the model name every model of the blueprint uses instead (same provider)",
    )
    temperature: float | None = Field(
        default=None, ge=0, le=2, description="every agent's temperature instead"
    )
    instructions: dict[str, str] = Field(
        default_factory=dict, description="agent name -> the instructions it gets instead"
    )

    @property
    def any(self) -> bool:
        return self.model is not None or self.temperature is not None or bool(self.instructions)

    def apply(self, loaded: LoadedBlueprint) -> LoadedBlueprint:
        """``loaded`` with the changes made; an agent that is not in it is refused."""
        bp = loaded.blueprint
        unknown = sorted(set(self.instructions) - set(bp.agents))
        if unknown:
            raise ValidationFailed(
                f"the blueprint has no agent {unknown[0]!r} (agents: "
                f"{', '.join(sorted(bp.agents)) or 'none'})",
                field=f"instructions.{unknown[0]}",
            )
        for agent, text in self.instructions.items():
            if not text.strip():
                raise ValidationFailed(
                    "instructions must not be empty", field=f"instructions.{agent}"
                )
        models = {
            name: spec.model_copy(update={"model": self.model}) if self.model else spec
            for name, spec in bp.models.items()
        }
        agents = {}
        for name, spec in bp.agents.items():
            update: dict[str, Any] = {}
            if self.temperature is not None:
                update["temperature"] = self.temperature
            if name in self.instructions:
                update["instructions"] = self.instructions[name]
            agents[name] = spec.model_copy(update=update) if update else spec
        changed = bp.model_copy(update={"models": models, "agents": agents})
        return loaded.model_copy(update={"blueprint": changed})


class StepSide(BaseModel):
    status: str
    attempt: int
    tokens: int
    cost_usd: float
    duration_ms: float | None
    error: str | None

    @classmethod
    def of(cls, record: StepRecord) -> StepSide:
        outcome = record.outcome
        return cls(
            status=record.status,
            attempt=record.attempt,
            tokens=outcome.usage.total_tokens if outcome else 0,
            cost_usd=outcome.cost_usd if outcome else 0.0,
            duration_ms=record.duration_ms,
            error=record.error,
        )


class StepDiff(BaseModel):
    key: str
    a: StepSide | None  # None: the step did not run in that run
    b: StepSide | None


class NodeDiff(BaseModel):
    node: str
    a: Any
    b: Any
    same: bool


class RunTotals(BaseModel):
    id: str
    status: str
    steps: int
    tokens: int
    cost_usd: float
    seconds: float | None

    @classmethod
    def of(cls, run: Run) -> RunTotals:
        seconds = run.finished_at - run.created_at if run.finished_at is not None else None
        return cls(
            id=run.id,
            status=run.status.value,
            steps=run.steps_run,
            tokens=run.usage.total_tokens,
            cost_usd=run.cost_usd,
            seconds=seconds,
        )


class RunDiff(BaseModel):
    a: RunTotals
    b: RunTotals
    same_output: bool
    nodes: list[NodeDiff]
    steps: list[StepDiff]


def diff_runs(store: RunStore, a_id: str, b_id: str) -> RunDiff:
    """What differs between run ``a`` and run ``b`` (a replay of it, usually)."""
    a, b = store.get(a_id), store.get(b_id)
    nodes = []
    for node in sorted(a.finished | b.finished):
        left = store.node_output(a.id, node) if node in a.finished else None
        right = store.node_output(b.id, node) if node in b.finished else None
        nodes.append(NodeDiff(node=node, a=left, b=right, same=left == right))
    a_steps = {s.key: s for s in store.steps(a.id)}
    b_steps = {s.key: s for s in store.steps(b.id)}
    steps = [
        StepDiff(
            key=key,
            a=StepSide.of(a_steps[key]) if key in a_steps else None,
            b=StepSide.of(b_steps[key]) if key in b_steps else None,
        )
        for key in sorted(a_steps.keys() | b_steps.keys())
    ]
    return RunDiff(
        a=RunTotals.of(a),
        b=RunTotals.of(b),
        same_output=a.output == b.output,
        nodes=nodes,
        steps=steps,
    )
