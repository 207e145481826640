"""With an OTLP endpoint configured, a run's spans and metrics reach it: `agentfn run` in a
fresh process exports over OTLP/HTTP to a collector stand-in on loopback, which decodes the
protobuf requests (opentelemetry-proto) as a real collector would."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agentfn.telemetry import run_span_id_of, trace_id_of
from tests.e2e.test_cli import agentfn
from tests.support.engine_harness import project

FLOW = """
nodes:
  - {id: first, type: agent, agent: helper, prompt: "label alpha"}
"""


class Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def test_a_runs_spans_and_metrics_reach_the_otlp_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Collector.received = []
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    workflow = project(tmp_path, FLOW)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)  # what `agentfn run` inherits
    done = agentfn("run", str(workflow), "--workers", "0", "--quiet", home=tmp_path / "home")
    server.shutdown()
    assert done.returncode == 0, done.stderr
    spans = []
    metric_names = set()
    for path, body in Collector.received:
        if path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            spans += [s for r in request.resource_spans for ss in r.scope_spans for s in ss.spans]
        elif path == "/v1/metrics":
            request = ExportMetricsServiceRequest.FromString(body)
            metric_names |= {
                m.name
                for r in request.resource_metrics
                for sm in r.scope_metrics
                for m in sm.metrics
            }
    names = sorted(s.name for s in spans)
    assert names == [
        "model.call",
        "model.call",
        "run wf",
        "step first@0",
        "step first@1",
        "tool record",
    ]
    run = next(s for s in spans if s.name == "run wf")
    run_id = next(a.value.string_value for a in run.attributes if a.key == "agentfn.run_id")
    assert int.from_bytes(run.trace_id, "big") == trace_id_of(run_id)
    assert int.from_bytes(run.span_id, "big") == run_span_id_of(run_id)
    assert {"agentfn.runs", "agentfn.steps", "agentfn.tokens"} <= metric_names
