"""Pydantic models at the HTTP edge: request bodies, responses, and the error envelope.

The same models validate requests and generate /openapi.json, so the document cannot drift
from what the API accepts. Only the /v1 handlers and the OpenAPI builder import this module:
a cold start answering /healthz does not load pydantic.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agentfn.api_keys import ApiKeyView
from agentfn.collaboration import AgentLoad, Plan, SubtaskView
from agentfn.collaboration.planner import ComplexTask
from agentfn.collaboration.status import CollaborationState
from agentfn.errors import UserError
from agentfn.ledger import CostRow, DayMetrics
from agentfn.ports import Usage
from agentfn.replay import ReplayChanges
from agentfn.roles import Role
from agentfn.runs import Run, RunError, RunStatus, StepRecord, ToolFlag
from agentfn.steps import StepKey
from agentfn.threads import THREAD_ID
from agentfn.workflows import Blueprint


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class OnThread(BaseModel):
    """A run may continue a conversation: its agent nodes start from the thread's messages,
    and the thread gets the run's prompts and answers when it completes."""

    thread: str | None = Field(
        default=None,
        pattern=THREAD_ID.pattern,
        description="the conversation thread the run continues (created if new)",
    )
    thread_ttl_s: float | None = Field(
        default=None,
        gt=0,
        description="seconds the thread lives after this run's messages are added; "
        "default: as it was (new threads: until deleted)",
    )

    @field_validator("thread_ttl_s")
    @classmethod
    def _ttl_needs_thread(cls, ttl: float | None, info: ValidationInfo) -> float | None:
        if ttl is not None and info.data.get("thread") is None:
            raise ValueError("a TTL needs a thread")
        return ttl


class CreateRun(OnThread):
    model_config = ConfigDict(extra="forbid")

    workflow: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="a stored workflow's name")
    input: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(default=0, ge=-10, le=10)


def _plan_or_task(schema: dict[str, Any]) -> None:
    """The document says what the validator checks: exactly one of plan and task, not null."""
    for name in ("plan", "task"):
        field = schema["properties"][name]
        field.pop("default", None)
        field.update(next(o for o in field.pop("anyOf") if o != {"type": "null"}))
    schema["oneOf"] = [{"required": ["plan"]}, {"required": ["task"]}]


class CreateCollaboration(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_plan_or_task)

    team: str = Field(
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="a stored workflow whose agents (with its models, prices and tools) do the "
        "work; its nodes are not used",
    )
    plan: Plan | None = Field(default=None, description="the subtasks, or give a task")
    task: ComplexTask | None = Field(
        default=None, description="a task for the team's planner agent to split into a plan"
    )
    name: str = Field(
        default="collaboration",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="the run's workflow name",
    )
    priority: int = Field(default=0, ge=-10, le=10)

    @model_validator(mode="after")
    def _plan_or_task(self) -> CreateCollaboration:
        if (self.plan is None) == (self.task is None):
            raise ValueError("give exactly one of 'plan' (subtasks) or 'task' (for a planner)")
        return self


class CollaborationProgress(BaseModel):
    id: str
    status: CollaborationState
    progress: dict[str, int]
    changed: list[SubtaskView] = Field(
        description="subtasks whose state changed since the cursor (all of them without one)"
    )
    cursor: str = Field(description="pass it back as ?cursor= to get only later changes")
    done: bool = Field(description="the collaboration is over: nothing will change again")


class AgentLoadList(BaseModel):
    items: list[AgentLoad]


class ReplayRun(ReplayChanges):
    """A replay, optionally with changes (which always call the models again)."""

    live: bool = Field(default=False, description="call the models again instead of the log")


class Signal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payload: Any = None


class ToolTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arguments: dict[str, Any] = Field(default_factory=dict)


class StepView(BaseModel):
    key: str
    status: str
    attempt: int
    started_at: float
    finished_at: float | None
    duration_ms: float | None
    error: str | None
    tokens: int
    cost_usd: float
    input: Any = Field(default=None, description="a tool's arguments, an agent's prompt")
    output: Any = Field(default=None, description="what the step completed its node with")

    @classmethod
    def of(cls, record: StepRecord) -> StepView:
        outcome = record.outcome
        return cls(
            input=outcome.input if outcome else None,
            output=outcome.output if outcome and outcome.completes else None,
            key=record.key,
            status=record.status,
            attempt=record.attempt,
            started_at=record.started_at,
            finished_at=record.finished_at,
            duration_ms=record.duration_ms,
            error=record.error,
            tokens=outcome.usage.total_tokens if outcome else 0,
            cost_usd=outcome.cost_usd if outcome else 0.0,
        )


class RunSummary(BaseModel):
    id: str
    workflow: str
    status: RunStatus
    created_at: float
    finished_at: float | None
    steps: int
    tokens: int
    cost_usd: float
    cached_calls: int = Field(description="model calls answered from the reply cache")
    replay_of: str | None
    thread: str | None

    @classmethod
    def of(cls, run: Run) -> RunSummary:
        return cls(
            id=run.id,
            workflow=run.workflow,
            status=run.status,
            created_at=run.created_at,
            finished_at=run.finished_at,
            steps=run.steps_run,
            tokens=run.usage.total_tokens,
            cost_usd=run.cost_usd,
            cached_calls=run.cached_calls,
            replay_of=run.replay_of,
            thread=run.thread.id if run.thread is not None else None,
        )


def _node_of(step: str) -> str | None:
    try:
        return StepKey.parse(step).node
    except UserError:  # "output", a template that failed, is no step
        return None


class GraphNode(BaseModel):
    id: str
    type: str
    agent: str | None = None


class GraphEdge(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    when: str | None = None


class RunGraph(BaseModel):
    nodes: list[GraphNode]
    edges: list[GraphEdge]

    @classmethod
    def of(cls, bp: Blueprint) -> RunGraph:
        return cls(
            nodes=[
                GraphNode(id=n.id, type=n.type, agent=getattr(n, "agent", None)) for n in bp.nodes
            ],
            edges=[GraphEdge(source=e.source, target=e.target, when=e.when) for e in bp.edges],
        )


class RunView(RunSummary):
    input: dict[str, Any]
    output: Any
    error: RunError | None
    failures: dict[str, RunError] = Field(
        description="nodes with on_failure: continue that failed; the run went on without them"
    )
    usage: Usage
    correlation_id: str
    waiting_for: list[str]
    nodes: dict[str, str] = Field(description="node id -> started | finished | skipped | failed")
    graph: RunGraph = Field(description="the workflow's nodes and edges, as the run runs them")
    flags: list[ToolFlag] = Field(
        description="tool outputs that read like instructions to the model (prompt injection?)"
    )
    step_details: list[StepView]

    @classmethod
    def full(cls, run: Run, steps: list[StepRecord], bp: Blueprint) -> RunView:
        nodes = {n: "started" for n in run.started}
        nodes.update({n: "finished" for n in run.finished})
        nodes.update({n: "skipped" for n in run.skipped})
        nodes.update({n: "failed" for n in run.failures})
        if run.error is not None:  # the node whose step ended the run
            node = _node_of(run.error.step)
            if node in bp.node_map:
                nodes[node] = "failed"
        return cls(
            **RunSummary.of(run).model_dump(),
            input=run.input,
            output=run.output,
            error=run.error,
            failures=run.failures,
            usage=run.usage,
            correlation_id=run.correlation_id,
            waiting_for=sorted({w.signal for w in run.waiting.values()}),
            nodes=dict(sorted(nodes.items())),
            flags=run.flags,
            graph=RunGraph.of(bp),
            step_details=[StepView.of(s) for s in sorted(steps, key=lambda s: s.started_at)],
        )


class RunPage(BaseModel):
    items: list[RunSummary]
    next_cursor: str | None


class WorkflowView(BaseModel):
    name: str
    description: str
    nodes: int
    edges: int
    inputs: dict[str, Any]
    source: str


class ToolView(BaseModel):
    name: str
    kind: str
    description: str
    parameters: dict[str, Any]


class ToolList(BaseModel):
    items: list[ToolView]


class ToolResult(BaseModel):
    name: str
    result: Any


class Health(BaseModel):
    """``status`` is ``ok``, or ``degraded`` (HTTP 503) when a component reports not ok."""

    model_config = ConfigDict(extra="allow")  # components, e.g. ``workers`` under serve

    status: str
    version: str


class CreateApiKey(BaseModel):
    """A new key of the caller's tenant (the tenant comes from the caller's key)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9 _.:@-]+$")
    role: Role
    expires_at: float | None = Field(
        default=None, description="Unix time after which the key stops working"
    )


class ApiKeyList(BaseModel):
    items: list[ApiKeyView]


class MetricsView(BaseModel):
    days: list[DayMetrics]


class CostList(BaseModel):
    items: list[CostRow]


class NameList(BaseModel):
    items: list[str]


class AgentRun(OnThread):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=100_000, description="what to ask the agent")
    models_from: str = Field(
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="a stored workflow whose models, prices and tool modules the agent uses",
    )
    priority: int = Field(default=0, ge=-10, le=10)


class ThreadDeleted(BaseModel):
    id: str
    runs: list[str] = Field(description="the runs that continued the thread, deleted with it")
