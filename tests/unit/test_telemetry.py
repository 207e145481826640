"""The engine's observer on OpenTelemetry's SDK (in-memory exporters): one trace per run with
its derived ids, every step a child of the run span, model and tool calls children of their
step, and the metrics of runs, steps, tokens, cost and durations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentfn.runs import RunStatus
from agentfn.telemetry import OtelObserver, run_span_id_of, trace_id_of
from agentfn.telemetry_sdk import RunIds
from agentfn.workflows import load_blueprint
from tests.support.engine_harness import drain, make_engine, project

FLOW = """
nodes:
  - {id: first, type: agent, agent: helper, prompt: "label alpha"}
  - {id: second, type: tool, tool: add, args: {a: 1, b: 2}}
edges:
  - {from: first, to: second}
"""


def observed(own_ids: bool) -> tuple[OtelObserver, InMemorySpanExporter, InMemoryMetricReader]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(id_generator=RunIds())
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    observer = OtelObserver(
        tracer_provider, MeterProvider(metric_readers=[reader]), own_ids=own_ids
    )
    return observer, spans, reader


def sums(reader: InMemoryMetricReader) -> dict[tuple[str, tuple[tuple[str, Any], ...]], float]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[tuple[str, tuple[tuple[str, Any], ...]], float] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    labels = tuple(sorted((point.attributes or {}).items()))
                    value = getattr(point, "value", None)
                    found[(metric.name, labels)] = value if value is not None else point.count
    return found


def test_a_run_is_one_trace_with_steps_and_calls_in_their_places(tmp_path: Path) -> None:
    observer, spans, reader = observed(own_ids=True)
    engine = make_engine(tmp_path)
    engine.observer = observer
    run = engine.start(load_blueprint(project(tmp_path, FLOW)), {})
    done = drain(engine, run.id)
    assert done.status is RunStatus.completed

    finished = spans.get_finished_spans()
    assert {s.context.trace_id for s in finished} == {trace_id_of(run.id)}
    by_name = {s.name: s for s in finished}
    root = by_name["run wf"]
    assert root.context.span_id == run_span_id_of(run.id) and root.parent is None
    assert root.attributes["agentfn.tokens"] == done.usage.total_tokens
    steps = [s for s in finished if s.name.startswith("step ")]
    assert sorted(s.name for s in steps) == ["step first@0", "step first@1", "step second"]
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in steps)
    model_calls = [s for s in finished if s.name == "model.call"]
    tools = [s for s in finished if s.name == "tool record"]
    first_turn = by_name["step first@0"]
    assert len(tools) == 1 and tools[0].parent.span_id == first_turn.context.span_id  # type: ignore[union-attr]
    assert {c.parent.span_id for c in model_calls} == {  # type: ignore[union-attr]
        by_name["step first@0"].context.span_id,
        by_name["step first@1"].context.span_id,
    }
    assert (
        sum(c.attributes["gen_ai.usage.input_tokens"] for c in model_calls)
        == done.usage.prompt_tokens
    )

    metrics = sums(reader)
    labels = (("status", "completed"), ("tenant", "default"), ("workflow", "wf"))
    assert metrics[("agentfn.runs", labels)] == 1
    steps_done = metrics[
        ("agentfn.steps", (("outcome", "done"), ("tenant", "default"), ("workflow", "wf")))
    ]
    assert steps_done == 3
    tokens = sum(v for (name, _), v in metrics.items() if name == "agentfn.tokens")
    assert tokens == done.usage.total_tokens
    cost = sum(v for (name, _), v in metrics.items() if name == "agentfn.cost_usd")
    assert abs(cost - done.cost_usd) < 1e-12
    assert metrics[("agentfn.tool.duration", (("tool", "record"),))] == 1  # one recorded call


def test_under_a_foreign_sdk_the_run_span_sits_beside_its_steps_in_the_same_trace(
    tmp_path: Path,
) -> None:
    observer, spans, _ = observed(own_ids=False)
    engine = make_engine(tmp_path)
    engine.observer = observer
    run = engine.start(load_blueprint(project(tmp_path, FLOW)), {})
    drain(engine, run.id)
    finished = spans.get_finished_spans()
    assert {s.context.trace_id for s in finished} == {trace_id_of(run.id)}
    root = next(s for s in finished if s.name == "run wf")
    assert root.parent is not None and root.parent.span_id == run_span_id_of(run.id)


def test_a_failed_step_and_run_are_errors_in_spans_and_counted(tmp_path: Path) -> None:
    observer, spans, reader = observed(own_ids=True)
    engine = make_engine(tmp_path)
    engine.observer = observer
    flow = """
nodes:
  - {id: boom, type: tool, tool: explode, args: {message: kaput}, retry: {max_attempts: 2, backoff: {base_s: 0, max_s: 0, jitter: false}}}
"""
    run = engine.start(load_blueprint(project(tmp_path, flow)), {})
    done = drain(engine, run.id)
    assert done.status is RunStatus.failed
    outcomes = [
        s.attributes["agentfn.outcome"] for s in spans.get_finished_spans() if s.name == "step boom"
    ]
    assert outcomes == ["retry", "dead"], outcomes
    root = next(s for s in spans.get_finished_spans() if s.name == "run wf")
    assert root.status.is_ok is False
    metrics = sums(reader)
    assert (
        metrics[("agentfn.runs", (("status", "failed"), ("tenant", "default"), ("workflow", "wf")))]
        == 1
    )
    for outcome in ("retry", "dead"):
        key = ("agentfn.steps", (("outcome", outcome), ("tenant", "default"), ("workflow", "wf")))
        assert metrics[key] == 1
