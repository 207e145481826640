"""OpenTelemetry's SDK with OTLP/HTTP exporters (the ``otel`` extra), installed by
:func:`agentfn.telemetry.configure` when an OTLP endpoint is configured.

Spans go through a batch processor and metrics through a periodic reader; entry points call
:func:`agentfn.telemetry.flush` at the end of each invocation, so nothing waits in a buffer
while the platform freezes the instance.
"""

from __future__ import annotations

import os

from agentfn.errors import ConfigError
from agentfn.telemetry import forced_ids

try:
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ConfigError(
        f"OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is missing ({exc}): "
        "install agentfn[otel]",
        field="OTEL_EXPORTER_OTLP_ENDPOINT",
    ) from None


class RunIds(RandomIdGenerator):
    """Random ids, except for a run span, which takes the ids derived from its run."""

    def generate_span_id(self) -> int:
        forced = forced_ids.get()
        return forced[1] if forced is not None else super().generate_span_id()

    def generate_trace_id(self) -> int:
        forced = forced_ids.get()
        return forced[0] if forced is not None else super().generate_trace_id()


_installed = False


def install() -> bool:
    """Set the global tracer and meter providers once per process."""
    global _installed
    if _installed:
        return False
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "agentfn")})
    tracer_provider = TracerProvider(resource=resource, id_generator=RunIds())
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    tracer_provider.agentfn_ids = True  # type: ignore[attr-defined]
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=60_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter_provider.agentfn_ids = True  # type: ignore[attr-defined]
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    _installed = True
    return True
