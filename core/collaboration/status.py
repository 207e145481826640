"""What a collaboration is doing: every subtask's state, agent, attempts, tokens, cost and
timing, and each agent's load, read from the run record and its step records.

Nothing here is stored twice: the plan's shape travels in the run's input (``compile``), the
states are the run's bookkeeping (started, finished, skipped, failures), and the figures are
the step records'. So the view is the same whichever worker or entry point asks, and a
replayed collaboration has one too.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentfn.collaboration.compile import COLLABORATION
from agentfn.errors import NotFound, ValidationFailed
from agentfn.runs import Run, RunError, RunStatus, RunStore, StepRecord
from agentfn.steps import StepKey

SubtaskState = Literal["waiting", "queued", "running", "completed", "failed", "skipped", "stopped"]
CollaborationState = Literal[
    "queued", "running", "waiting", "completed", "partially_failed", "failed", "cancelled"
]
STATES: tuple[SubtaskState, ...] = (
    "waiting",
    "queued",
    "running",
    "completed",
    "failed",
    "skipped",
    "stopped",
)


class _Shape(BaseModel):
    """One subtask as the plan left it in the run's input."""

    model_config = ConfigDict(extra="ignore")

    capability: str
    agent: str
    depends_on: list[str] = Field(default_factory=list)


class PlannerView(BaseModel):
    """Who planned the collaboration (a planner agent), and what planning cost."""

    agent: str
    tokens: int
    cost_usd: float


class _Plan(BaseModel):
    model_config = ConfigDict(extra="ignore")

    subtasks: dict[str, _Shape]
    planner: PlannerView | None = None


class SubtaskView(BaseModel):
    id: str
    capability: str
    agent: str
    depends_on: list[str]
    status: SubtaskState = Field(
        description="waiting (for dependencies), queued, running, completed, failed, "
        "skipped (a dependency failed or was skipped), stopped (the run ended before it)"
    )
    attempts: int = Field(description="deliveries its steps took: a retry adds one")
    steps: int = Field(description="its steps: one per agent turn")
    tokens: int
    cost_usd: float
    started_at: float | None
    finished_at: float | None
    duration_ms: float = Field(description="time its steps ran, summed")
    error: str | None = Field(description="why it failed, or which dependency it lacked")


class AgentLoad(BaseModel):
    agent: str
    capabilities: list[str]
    assigned: int = Field(description="subtasks given to this agent: its load")
    active: int = Field(description="of those, queued or running now")
    completed: int
    failed: int
    tokens: int
    cost_usd: float
    busy_ms: float = Field(description="time its steps ran, summed")
    subtasks: list[str]


class CollaborationView(BaseModel):
    id: str
    workflow: str
    status: CollaborationState = Field(
        description="the run's status; partially_failed: it completed, but some subtasks "
        "failed (named in failures) and what depended on them was skipped"
    )
    created_at: float
    finished_at: float | None
    progress: dict[str, int] = Field(description="how many subtasks are in each state")
    tokens: int
    cost_usd: float
    subtasks: list[SubtaskView]
    failures: dict[str, RunError]
    output: Any = Field(
        description="the results of the completed subtasks nothing depends on, or their "
        "compiled result (the plan's result)"
    )
    error: RunError | None
    planner: PlannerView | None = Field(
        default=None, description="the planner agent that made the plan, if one did"
    )


def collaboration_view(store: RunStore, run_id: str) -> CollaborationView:
    """The collaboration of run ``run_id``; NotFound if there is none."""
    run = store.get(run_id)
    about = _about(run)
    shapes = about.subtasks
    records: dict[str, list[StepRecord]] = {sub: [] for sub in shapes}
    for record in store.steps(run.id):
        node = StepKey.parse(record.key).node
        if node in records:
            records[node].append(record)
    subtasks = [_subtask(run, sub, shape, records[sub]) for sub, shape in shapes.items()]
    progress = dict.fromkeys(STATES, 0)
    for view in subtasks:
        progress[view.status] += 1
    return CollaborationView(
        id=run.id,
        workflow=run.workflow,
        status=_state(run),
        created_at=run.created_at,
        finished_at=run.finished_at,
        progress=progress,
        tokens=run.usage.total_tokens + (about.planner.tokens if about.planner else 0),
        cost_usd=run.cost_usd + (about.planner.cost_usd if about.planner else 0.0),
        subtasks=subtasks,
        failures=run.failures,
        output=run.output,
        error=run.error,
        planner=about.planner,
    )


def agent_loads(store: RunStore, view: CollaborationView) -> list[AgentLoad]:
    """Which agent of the team did what, every agent of the team listed (an idle one too)."""
    run = store.get(view.id)
    team = store.load_blueprint(run.blueprint_key).blueprint.agents
    out = []
    for name, spec in sorted(team.items()):
        mine = [s for s in view.subtasks if s.agent == name]
        out.append(
            AgentLoad(
                agent=name,
                capabilities=list(spec.capabilities),
                assigned=len(mine),
                active=sum(s.status in ("queued", "running") for s in mine),
                completed=sum(s.status == "completed" for s in mine),
                failed=sum(s.status == "failed" for s in mine),
                tokens=sum(s.tokens for s in mine),
                cost_usd=sum(s.cost_usd for s in mine),
                busy_ms=sum(s.duration_ms for s in mine),
                subtasks=[s.id for s in mine],
            )
        )
    return out


def _about(run: Run) -> _Plan:
    raw = run.input.get(COLLABORATION)
    try:
        return _Plan.model_validate(raw)
    except ValidationError:
        raise NotFound(f"run {run.id!r} is not a collaboration", field="collaboration_id") from None


def _state(run: Run) -> CollaborationState:
    if run.status is RunStatus.completed and run.failures:
        return "partially_failed"
    return run.status.value  # the other states are the run's


def _subtask(run: Run, sub: str, shape: _Shape, records: list[StepRecord]) -> SubtaskView:
    status, error = _status(run, sub, shape, records)
    done = [r.outcome for r in records if r.outcome is not None]
    finished = [r.finished_at for r in records if r.finished_at is not None]
    return SubtaskView(
        id=sub,
        capability=shape.capability,
        agent=shape.agent,
        depends_on=shape.depends_on,
        status=status,
        attempts=sum(r.attempt for r in records),
        steps=len(records),
        tokens=sum(o.usage.total_tokens for o in done),
        cost_usd=sum(o.cost_usd for o in done),
        started_at=min((r.started_at for r in records), default=None),
        finished_at=max(finished) if finished and status in ("completed", "failed") else None,
        duration_ms=sum(r.duration_ms or 0.0 for r in records),
        error=error,
    )


def _status(
    run: Run, sub: str, shape: _Shape, records: list[StepRecord]
) -> tuple[SubtaskState, str | None]:
    if sub in run.failures:
        failure = run.failures[sub]
        return "failed", f"{failure.type}: {failure.message}"
    if sub in run.finished:
        return "completed", None
    if sub in run.skipped:
        missing = [d for d in shape.depends_on if d not in run.finished]
        return "skipped", f"not run: dependency {', '.join(missing)} did not complete"
    if run.status.terminal:
        return "stopped", None
    if sub in run.started:
        running = any(r.status in ("running", "failed") for r in records)
        return ("running" if running else "queued"), None
    return "waiting", None


def progress_cursor(view: CollaborationView) -> str:
    """An opaque cursor naming every subtask's state in ``view``: polling with it returns the
    subtasks whose state changed since. It holds the states, not a time, so clocks that
    differ between workers cannot make a poll miss a change."""
    codes = bytes(STATES.index(s.status) for s in view.subtasks)
    return base64.urlsafe_b64encode(zlib.compress(codes, 9)).decode().rstrip("=")


def changed_since(view: CollaborationView, cursor: str | None) -> list[SubtaskView]:
    """The subtasks whose state differs from the one ``cursor`` saw (all, without one)."""
    if cursor is None:
        return list(view.subtasks)
    try:
        codes = zlib.decompress(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, zlib.error):
        raise ValidationFailed("cursor is not one this API returned", field="cursor") from None
    if len(codes) != len(view.subtasks) or any(c >= len(STATES) for c in codes):
        raise ValidationFailed("cursor is not one this collaboration returned", field="cursor")
    return [s for s, c in zip(view.subtasks, codes, strict=True) if STATES[c] != s.status]
