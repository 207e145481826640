"""The tenant's ledger: what its runs did and cost, per UTC day, workflow and agent.

One record a day in the tenant's store (``ledger/<YYYY-MM-DD>.json``), added to by
compare-and-swap when a run ends (its runs, steps, tokens and cost, per agent from
``Run.agent_usage``) and when a step is retried or dead-lettered. So ``GET /v1/metrics`` and
the cost reports read a handful of small records, never every run. Costs come from the price
table (the blueprint's ``prices``, else agentfn's), as the runs recorded them.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from agentfn.cas_json import read_json, write_json
from agentfn.errors import Conflict, CorruptRecord
from agentfn.ports import BlobStore, Usage
from agentfn.runs import AgentUsage, Run, RunStatus

PREFIX = "ledger/"
_TRIES = 50
MAX_DAYS = 366


class WorkflowDay(BaseModel):
    runs: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    steps: int = 0
    retries: int = 0
    dead_letters: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cached_calls: int = 0  # model calls the reply cache answered
    run_seconds: float = 0.0  # summed: mean = run_seconds / runs
    agents: dict[str, AgentUsage] = Field(default_factory=dict)


class LedgerDay(BaseModel):
    day: str
    workflows: dict[str, WorkflowDay] = Field(default_factory=dict)


class CostRow(BaseModel):
    day: str
    workflow: str
    agent: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cached_calls: int = 0  # of ``calls``: answered from the reply cache, at no cost


class DayMetrics(BaseModel):
    day: str
    runs: int
    completed: int
    failed: int
    cancelled: int
    steps: int
    retries: int
    dead_letters: int
    tokens: int
    cost_usd: float
    cached_calls: int = 0
    mean_run_seconds: float | None


def day_of(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()


class Ledger:
    """One tenant's ledger (``blobs`` is the tenant's view)."""

    def __init__(self, blobs: BlobStore, *, clock: Callable[[], float] = time.time) -> None:
        self.blobs = blobs
        self.clock = clock

    # ------------------------------------------------------------------ writing

    def record_run(self, run: Run) -> None:
        """Add an ended run to the day it ended."""

        def add(wf: WorkflowDay) -> None:
            wf.runs += 1
            if run.status is RunStatus.completed:
                wf.completed += 1
            elif run.status is RunStatus.failed:
                wf.failed += 1
            elif run.status is RunStatus.cancelled:
                wf.cancelled += 1
            wf.steps += run.steps_run
            wf.prompt_tokens += run.usage.prompt_tokens
            wf.completion_tokens += run.usage.completion_tokens
            wf.cost_usd += run.cost_usd
            wf.cached_calls += run.cached_calls
            wf.run_seconds += max(0.0, (run.finished_at or self.clock()) - run.created_at)
            for agent, used in run.agent_usage.items():
                had = wf.agents.get(agent) or AgentUsage()
                wf.agents[agent] = AgentUsage(
                    calls=had.calls + used.calls,
                    prompt_tokens=had.prompt_tokens + used.prompt_tokens,
                    completion_tokens=had.completion_tokens + used.completion_tokens,
                    cost_usd=had.cost_usd + used.cost_usd,
                    cached_calls=had.cached_calls + used.cached_calls,
                )

        self._change(day_of(run.finished_at or self.clock()), run.workflow, add)

    def record_step(self, workflow: str, outcome: str) -> None:
        """Count a retried or dead-lettered step (other outcomes are in the runs' totals)."""

        def add(wf: WorkflowDay) -> None:
            if outcome == "retry":
                wf.retries += 1
            else:
                wf.dead_letters += 1

        if outcome in ("retry", "dead"):
            self._change(day_of(self.clock()), workflow, add)

    def _change(self, day: str, workflow: str, add: Callable[[WorkflowDay], None]) -> None:
        key = f"{PREFIX}{day}.json"
        for _ in range(_TRIES):
            value, etag = read_json(self.blobs, key)
            record = self._parse(value, key, day)
            add(record.workflows.setdefault(workflow, WorkflowDay()))
            if write_json(self.blobs, key, record.model_dump(mode="json"), etag):
                return
        raise Conflict(f"the ledger of {day} is contended; the run's totals were not added")

    # ------------------------------------------------------------------ reading

    def days(self, count: int) -> list[LedgerDay]:
        """The last ``count`` days (today included), oldest first; days without runs are
        empty."""
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        first = today - timedelta(days=count - 1)
        return [self.day((first + timedelta(days=i)).isoformat()) for i in range(count)]

    def day(self, day: str) -> LedgerDay:
        key = f"{PREFIX}{day}.json"
        return self._parse(read_json(self.blobs, key)[0], key, day)

    def metrics(self, count: int) -> list[DayMetrics]:
        out = []
        for d in self.days(count):
            wfs = list(d.workflows.values())
            runs = sum(w.runs for w in wfs)
            out.append(
                DayMetrics(
                    day=d.day,
                    runs=runs,
                    completed=sum(w.completed for w in wfs),
                    failed=sum(w.failed for w in wfs),
                    cancelled=sum(w.cancelled for w in wfs),
                    steps=sum(w.steps for w in wfs),
                    retries=sum(w.retries for w in wfs),
                    dead_letters=sum(w.dead_letters for w in wfs),
                    tokens=sum(w.prompt_tokens + w.completion_tokens for w in wfs),
                    cost_usd=sum(w.cost_usd for w in wfs),
                    cached_calls=sum(w.cached_calls for w in wfs),
                    mean_run_seconds=sum(w.run_seconds for w in wfs) / runs if runs else None,
                )
            )
        return out

    def costs(self, count: int) -> list[CostRow]:
        """One row per day, workflow and agent with spending (``(none)``: model calls outside
        any agent, e.g. a planner)."""
        rows = []
        for d in self.days(count):
            for workflow, wf in sorted(d.workflows.items()):
                for agent, used in sorted(wf.agents.items()):
                    rows.append(
                        CostRow(
                            day=d.day,
                            workflow=workflow,
                            agent=agent,
                            calls=used.calls,
                            prompt_tokens=used.prompt_tokens,
                            completion_tokens=used.completion_tokens,
                            cost_usd=used.cost_usd,
                            cached_calls=used.cached_calls,
                        )
                    )
        return rows

    @staticmethod
    def _parse(value: Any, key: str, day: str) -> LedgerDay:
        if value is None:
            return LedgerDay(day=day)
        try:
            return LedgerDay.model_validate(value)
        except ValueError as exc:
            raise CorruptRecord(f"{key} does not parse: {exc}") from None


def costs_csv(rows: list[CostRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(CostRow.model_fields))
    for r in rows:
        fields = (r.day, r.workflow, r.agent, r.calls, r.prompt_tokens, r.completion_tokens)
        writer.writerow([*fields, f"{r.cost_usd:.8f}", r.cached_calls])
    return out.getvalue()


def check_days(raw: str | None, default: int = 7) -> int:
    from agentfn.errors import ValidationFailed

    try:
        days = int(raw) if raw is not None else default
    except ValueError:
        raise ValidationFailed("days must be an integer", field="days") from None
    if not 1 <= days <= MAX_DAYS:
        raise ValidationFailed(f"days must be between 1 and {MAX_DAYS}", field="days")
    return days


class LedgerObserver:
    """The engine's observer that keeps the ledger: a run's totals when it ends, retried and
    dead-lettered steps as they happen."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def run_started(self, run: Run, tenant: str) -> None:
        return

    def run_ended(self, run: Run, tenant: str) -> None:
        self.ledger.record_run(run)

    def step(self, run: Run, key: str, attempt: int, tenant: str) -> _StepCount:
        return _StepCount(self.ledger, run.workflow)

    def model_call(self, run_id: str, step: str, agent: str | None) -> _Nothing:
        return _Nothing()

    def tool_call(self, run_id: str, step: str, tool: str) -> _Nothing:
        return _Nothing()


class _StepCount:
    def __init__(self, ledger: Ledger, workflow: str) -> None:
        self.ledger, self.workflow, self.name = ledger, workflow, ""

    def __enter__(self) -> _StepCount:
        return self

    def outcome(self, name: str, error: str | None = None) -> None:
        self.name = name

    def __exit__(self, *exc: object) -> None:
        self.ledger.record_step(self.workflow, self.name)


class _Nothing:
    def __enter__(self) -> _Nothing:
        return self

    def __exit__(self, *exc: object) -> None:
        return

    def outcome(self, name: str, error: str | None = None) -> None:
        return

    def replied(self, usage: Usage, cost_usd: float, model: str) -> None:
        return
