"""Telemetry: the engine's one observer hook, and the OpenTelemetry observer every entry point
uses (Lambda adds Powertools' EMF metrics and X-Ray subsegments beside it).

A run outlives any one function invocation, so its trace cannot be one open span: every span
of a run belongs to one trace whose id is derived from the run id, under a run span whose id
is derived too. Step spans (with the model and tool calls inside them as children) are
emitted as each step runs, on whichever worker; the run span is emitted when the run ends,
with the run's real start and end times. With agentfn's own SDK setup (:func:`configure`) the
run span takes its derived id, so the trace is one tree; under an SDK set up elsewhere it has
a random id and the steps sit beside it in the same trace.

Metrics: ``agentfn.runs.started``, ``agentfn.runs`` (ended, by status), ``agentfn.steps`` (by
outcome: done, retry, failed, dead, ...), ``agentfn.tokens`` (by kind), ``agentfn.cost_usd``,
and the durations of steps, model calls and tool calls (``agentfn.step.duration``,
``agentfn.model.duration``, ``agentfn.tool.duration``, in ms). Without an SDK the
OpenTelemetry API does nothing, cheaply.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import os
import time
from typing import Any, Protocol

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from agentfn.ports import Usage
from agentfn.runs import Run

SCOPE = "agentfn"
log = logging.getLogger("agentfn.telemetry")
StepOutcomeName = str  # done | retry | failed | dead | deferred | skipped | duplicate ...


class CallRecord(Protocol):
    """What an observer learns when a model call returns."""

    def __call__(self, usage: Usage, cost_usd: float, model: str) -> None: ...


class Observer(Protocol):
    """What the engine tells about its work; each method is cheap and never raises."""

    def run_started(self, run: Run, tenant: str) -> None: ...

    def run_ended(self, run: Run, tenant: str) -> None: ...

    def step(self, run: Run, key: str, attempt: int, tenant: str) -> StepWatch: ...

    def model_call(self, run_id: str, step: str, agent: str | None) -> CallWatch: ...

    def tool_call(self, run_id: str, step: str, tool: str) -> ToolWatch: ...


class StepWatch(Protocol):
    def __enter__(self) -> StepWatch: ...

    def __exit__(self, *exc: object) -> None: ...

    def outcome(self, name: StepOutcomeName, error: str | None = None) -> None: ...


class CallWatch(Protocol):
    def __enter__(self) -> CallWatch: ...

    def __exit__(self, *exc: object) -> None: ...

    def replied(self, usage: Usage, cost_usd: float, model: str) -> None: ...


class ToolWatch(Protocol):
    def __enter__(self) -> ToolWatch: ...

    def __exit__(self, *exc: object) -> None: ...


# ------------------------------------------------------------------ derived ids


def trace_id_of(run_id: str) -> int:
    return int(hashlib.sha256(run_id.encode()).hexdigest()[:32], 16) or 1


def run_span_id_of(run_id: str) -> int:
    return int(hashlib.sha256(f"{run_id}/run".encode()).hexdigest()[:16], 16) or 1


def run_context(run_id: str) -> Any:
    """The context whose parent is the run's span, wherever and whenever a step runs."""
    parent = SpanContext(
        trace_id=trace_id_of(run_id),
        span_id=run_span_id_of(run_id),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(parent))


# The trace and span ids the next root span must take (a run span's derived ids); read by the
# id generator agentfn's SDK setup installs (``agentfn.telemetry_sdk``).
forced_ids: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "agentfn_forced_ids", default=None
)


# ------------------------------------------------------------------ OpenTelemetry


class OtelObserver:
    """Spans and metrics through the OpenTelemetry API: the global providers, or those given
    (tests). ``own_ids``: the tracer provider generates ids with ``forced_ids`` in mind."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        own_ids: bool | None = None,
    ) -> None:
        self.tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, meter_provider=meter_provider)
        provider = tracer_provider or trace.get_tracer_provider()
        self.own_ids = own_ids if own_ids is not None else getattr(provider, "agentfn_ids", False)
        self.started = meter.create_counter("agentfn.runs.started", description="runs started")
        self.runs = meter.create_counter("agentfn.runs", description="runs ended, by status")
        self.steps = meter.create_counter("agentfn.steps", description="steps run, by outcome")
        self.tokens = meter.create_counter("agentfn.tokens", description="model tokens, by kind")
        self.cost = meter.create_counter("agentfn.cost_usd", unit="USD", description="model cost")
        self.step_ms = meter.create_histogram("agentfn.step.duration", unit="ms")
        self.model_ms = meter.create_histogram("agentfn.model.duration", unit="ms")
        self.tool_ms = meter.create_histogram("agentfn.tool.duration", unit="ms")

    def run_started(self, run: Run, tenant: str) -> None:
        self.started.add(1, {"workflow": run.workflow, "tenant": tenant})

    def run_ended(self, run: Run, tenant: str) -> None:
        attributes = {"workflow": run.workflow, "tenant": tenant, "status": run.status.value}
        self.runs.add(1, attributes)
        if self.own_ids:  # a root span taking the run's derived ids: the trace is one tree
            context = trace.set_span_in_context(trace.INVALID_SPAN)
            token = forced_ids.set((trace_id_of(run.id), run_span_id_of(run.id)))
        else:  # beside the steps, under the run's derived (never emitted) parent
            context, token = run_context(run.id), None
        try:
            span = self.tracer.start_span(
                f"run {run.workflow}",
                context=context,
                kind=SpanKind.INTERNAL,
                start_time=int(run.created_at * 1e9),
                attributes={
                    "agentfn.run_id": run.id,
                    "agentfn.correlation_id": run.correlation_id,
                    "agentfn.steps": run.steps_run,
                    "agentfn.tokens": run.usage.total_tokens,
                    "agentfn.cost_usd": run.cost_usd,
                    **attributes,
                },
            )
        finally:
            if token is not None:
                forced_ids.reset(token)
        if run.error is not None:
            span.set_status(Status(StatusCode.ERROR, run.error.message[:500]))
        span.end(end_time=int((run.finished_at or time.time()) * 1e9))

    def step(self, run: Run, key: str, attempt: int, tenant: str) -> StepWatch:
        return _OtelStep(self, run, key, attempt, tenant)

    def model_call(self, run_id: str, step: str, agent: str | None) -> CallWatch:
        return _OtelCall(self, step, agent)

    def tool_call(self, run_id: str, step: str, tool: str) -> ToolWatch:
        return _OtelTool(self, step, tool)


class _OtelStep:
    def __init__(self, o: OtelObserver, run: Run, key: str, attempt: int, tenant: str) -> None:
        self.o, self.key, self.attempt = o, key, attempt
        self.attributes = {"workflow": run.workflow, "tenant": tenant}
        self.run_id, self.cid = run.id, run.correlation_id
        self.name: StepOutcomeName = "error"  # until the engine says (a bug raised otherwise)
        self.error: str | None = None

    def __enter__(self) -> _OtelStep:
        self.started = time.perf_counter()
        self.span = self.o.tracer.start_span(
            f"step {self.key}",
            context=run_context(self.run_id),
            attributes={
                "agentfn.run_id": self.run_id,
                "agentfn.step": self.key,
                "agentfn.attempt": self.attempt,
                "agentfn.correlation_id": self.cid,
                **self.attributes,
            },
        )
        self._use = trace.use_span(self.span, end_on_exit=False)
        self._use.__enter__()
        return self

    def outcome(self, name: StepOutcomeName, error: str | None = None) -> None:
        self.name, self.error = name, error

    def __exit__(self, *exc: object) -> None:
        self._use.__exit__(None, None, None)
        elapsed_ms = (time.perf_counter() - self.started) * 1000
        self.span.set_attribute("agentfn.outcome", self.name)
        if self.error is not None:
            self.span.set_status(Status(StatusCode.ERROR, self.error[:500]))
        self.span.end()
        labels = {**self.attributes, "outcome": self.name}
        self.o.steps.add(1, labels)
        self.o.step_ms.record(elapsed_ms, labels)


class _OtelCall:
    def __init__(self, o: OtelObserver, step: str, agent: str | None) -> None:
        self.o, self.step, self.agent = o, step, agent or ""

    def __enter__(self) -> _OtelCall:
        self.started = time.perf_counter()
        self._cm = self.o.tracer.start_as_current_span(
            "model.call", attributes={"agentfn.step": self.step, "agentfn.agent": self.agent}
        )
        self.span = self._cm.__enter__()
        return self

    def replied(self, usage: Usage, cost_usd: float, model: str) -> None:
        self.span.set_attributes(
            {
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": usage.prompt_tokens,
                "gen_ai.usage.output_tokens": usage.completion_tokens,
                "agentfn.cost_usd": cost_usd,
            }
        )
        labels = {"model": model, "agent": self.agent}
        self.o.tokens.add(usage.prompt_tokens, {**labels, "kind": "prompt"})
        self.o.tokens.add(usage.completion_tokens, {**labels, "kind": "completion"})
        self.o.cost.add(cost_usd, labels)

    def __exit__(self, *exc: object) -> None:
        self.o.model_ms.record((time.perf_counter() - self.started) * 1000, {"agent": self.agent})
        self._cm.__exit__(*exc)  # type: ignore[arg-type]


class _OtelTool:
    def __init__(self, o: OtelObserver, step: str, tool: str) -> None:
        self.o, self.step, self.tool = o, step, tool

    def __enter__(self) -> _OtelTool:
        self.started = time.perf_counter()
        self._cm = self.o.tracer.start_as_current_span(
            f"tool {self.tool}", attributes={"agentfn.step": self.step, "agentfn.tool": self.tool}
        )
        self._cm.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.o.tool_ms.record((time.perf_counter() - self.started) * 1000, {"tool": self.tool})
        self._cm.__exit__(*exc)  # type: ignore[arg-type]


# ------------------------------------------------------------------ several at once


class Observers:
    """Every observer the entry point installed, told the same things. An observer that fails
    is logged and skipped: watching a run never breaks it."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def run_started(self, run: Run, tenant: str) -> None:
        for o in self.observers:
            _safely(o.run_started, run, tenant)

    def run_ended(self, run: Run, tenant: str) -> None:
        for o in self.observers:
            _safely(o.run_ended, run, tenant)

    def step(self, run: Run, key: str, attempt: int, tenant: str) -> StepWatch:
        return _Many([_safely(o.step, run, key, attempt, tenant) for o in self.observers])

    def model_call(self, run_id: str, step: str, agent: str | None) -> CallWatch:
        return _Many([_safely(o.model_call, run_id, step, agent) for o in self.observers])

    def tool_call(self, run_id: str, step: str, tool: str) -> ToolWatch:
        return _Many([_safely(o.tool_call, run_id, step, tool) for o in self.observers])


def _safely(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:  # an exporter or a ledger write that failed: the run goes on
        log.warning("an observer failed: %s: %s", type(exc).__name__, exc)
        return None


class _Many:
    def __init__(self, watches: list[Any]) -> None:
        self.watches = [w for w in watches if w is not None]

    def __enter__(self) -> _Many:
        self.watches = [w for w in self.watches if _safely(w.__enter__) is not None]
        return self

    def __exit__(self, *exc: object) -> None:
        for w in reversed(self.watches):
            _safely(w.__exit__, *exc)

    def outcome(self, name: StepOutcomeName, error: str | None = None) -> None:
        for w in self.watches:
            _safely(w.outcome, name, error)

    def replied(self, usage: Usage, cost_usd: float, model: str) -> None:
        for w in self.watches:
            _safely(w.replied, usage, cost_usd, model)


# ------------------------------------------------------------------ SDK setup


def configure(environ: dict[str, str] | None = None) -> bool:
    """Install OpenTelemetry's SDK with OTLP/HTTP exporters when ``OTEL_EXPORTER_OTLP_ENDPOINT``
    (or a signal's own endpoint) is set and no SDK is installed yet; returns whether it did.
    The exporters read the standard ``OTEL_*`` variables (headers, timeouts, service name)."""
    env = os.environ if environ is None else environ
    wanted = any(
        env.get(k)
        for k in (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        )
    )
    if not wanted or env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    from agentfn.telemetry_sdk import install

    return install()


def flush() -> None:
    """Export what is buffered: an invocation's end, before the platform freezes the
    instance (a no-op without agentfn's SDK setup)."""
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        force = getattr(provider, "force_flush", None)  # the API's no-op providers have none
        if force is not None:
            force()
