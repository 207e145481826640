"""Powertools Logger, Metrics (EMF) and Tracer shared by the AWS handlers.

The Tracer pulls in the X-Ray SDK (hundreds of milliseconds of imports), so it is created only
when the function has tracing on (``POWERTOOLS_TRACE_DISABLED`` is not true).
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from agentfn.ports import Usage
    from agentfn.runs import Run
    from agentfn.telemetry import CallWatch, StepWatch, ToolWatch

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "agentfn")

logger = Logger(service=SERVICE)
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "agentfn"), service=SERVICE
)


@cache
def tracer() -> Tracer | None:
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true"):
        return None
    return Tracer(service=SERVICE)


def annotate(correlation_id: str) -> None:
    """Carry the correlation id into logs and, when tracing, the X-Ray segment."""
    logger.append_keys(correlation_id=correlation_id)
    active = tracer()
    if active is not None:
        active.put_annotation("correlation_id", correlation_id)


class EmfObserver:
    """The engine's observer on Lambda, beside OpenTelemetry's: CloudWatch metrics as EMF
    (flushed by ``metrics.log_metrics`` at the end of each invocation) and, with tracing on,
    X-Ray subsegments for steps, model calls and tool calls."""

    def run_started(self, run: Run, tenant: str) -> None:
        metrics.add_metric(name="runs_started", unit=MetricUnit.Count, value=1)

    def run_ended(self, run: Run, tenant: str) -> None:
        metrics.add_metric(name=f"runs_{run.status.value}", unit=MetricUnit.Count, value=1)

    def step(self, run: Run, key: str, attempt: int, tenant: str) -> StepWatch:
        return _Timed("step_duration", f"step {key}")

    def model_call(self, run_id: str, step: str, agent: str | None) -> CallWatch:
        return _Timed("model_duration", "model.call")

    def tool_call(self, run_id: str, step: str, tool: str) -> ToolWatch:
        return _Timed("tool_duration", f"tool {tool}")


class _Timed:
    def __init__(self, metric: str, segment: str) -> None:
        self.metric, self.segment = metric, segment
        self._sub: Any = None

    def __enter__(self) -> _Timed:
        active = tracer()
        if active is not None:
            self._sub = active.provider.in_subsegment(self.segment)
            self._sub.__enter__()
        self.started = time.perf_counter()
        return self

    def outcome(self, name: str, error: str | None = None) -> None:
        return  # the worker's report() counts step outcomes (step_<outcome>)

    def replied(self, usage: Usage, cost_usd: float, model: str) -> None:
        metrics.add_metric(name="prompt_tokens", unit=MetricUnit.Count, value=usage.prompt_tokens)
        metrics.add_metric(
            name="completion_tokens", unit=MetricUnit.Count, value=usage.completion_tokens
        )
        metrics.add_metric(name="cost_usd", unit=MetricUnit.NoUnit, value=cost_usd)

    def __exit__(self, *exc: object) -> None:
        elapsed_ms = (time.perf_counter() - self.started) * 1000
        metrics.add_metric(name=self.metric, unit=MetricUnit.Milliseconds, value=elapsed_ms)
        if self._sub is not None:
            self._sub.__exit__(*exc)
