"""Real provider payload samples (events/samples/) fed through the handlers, and agentfn's
own CloudEvents schemas (events/schemas/) kept in step with their models."""

from __future__ import annotations

import base64
import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentfn.events.cloudevents import EVENTS, StepReadyEvent, export_schemas, job_of, step_ready
from agentfn.functions import runtime
from agentfn.functions.local.cli import EXAMPLE
from agentfn.runs import RunStatus, RunStore
from tests.support.entry_points import LambdaContext

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "samples"
KEY = "sample-key"


def sample(path: str) -> Any:
    return json.loads((SAMPLES / path).read_text())


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for key, value in {
        "AGENTFN_HOME": str(tmp_path),
        "AGENTFN_STORAGE": (tmp_path / "store").as_uri(),
        "AGENTFN_QUEUE": f"sqlite://{tmp_path / 'queue.db'}",
        "AGENTFN_SECRETS": "env://",
        "AGENTFN_PROJECT": str(EXAMPLE),
        "AGENTFN_API_KEY": KEY,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "agentfn-tests",
    }.items():
        monkeypatch.setenv(key, value)
    runtime.reset()
    api = runtime.current().api
    from agentfn.api import Request

    put = api.handle(
        Request(
            "PUT",
            "/v1/workflows/research-brief",
            {"authorization": f"Bearer {KEY}", "content-type": "application/yaml"},
            body=(EXAMPLE / "workflow.yaml").read_bytes(),
        )
    )
    assert put.status == 200
    yield
    runtime.reset()


def ran(store: RunStore, run_id: str, step: str) -> bool:
    """The step was executed and folded into its run."""
    record = store.get_step(run_id, step)
    return (
        record is not None and record[0].status == "done" and step not in store.get(run_id).pending
    )


def pending_job() -> dict[str, Any]:
    """The body of the next queued job (left in the queue: the handler under test runs it)."""
    [message] = runtime.current().queue.receive(1, visibility_timeout=60)
    runtime.current().queue.retry(message, delay=0)
    return message.body


def test_api_gateway_sample_starts_a_run_carrying_the_correlation_id(deployment: None) -> None:
    import agentfn.functions.aws.http as http
    import agentfn.functions.aws.worker as worker

    event = sample("aws/apigw_http_v2.json")
    event["headers"]["authorization"] = f"Bearer {KEY}"
    event["headers"]["x-correlation-id"] = "corr-42"
    reply = http.handler(event, LambdaContext())
    assert reply["statusCode"] == 202, reply
    assert reply["headers"]["x-correlation-id"] == "corr-42"
    body = json.loads(reply["body"])
    assert body["workflow"] == "research-brief" and body["status"] == "queued"
    run = runtime.current().engine.store.get(body["id"])
    assert run.correlation_id == "corr-42"
    job = pending_job()
    expected = {"run": body["id"], "step": "plan@0", "cid": "corr-42", "tenant": "default"}
    assert job_of(job) == expected
    # the worker's log lines carry it too (Powertools Logger, JSON on stdout)
    sqs = sample("aws/sqs_batch.json")
    sqs["Records"][0]["body"] = json.dumps(job)
    handler = worker.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        assert worker.handler(sqs, LambdaContext()) == {"batchItemFailures": []}
    finally:
        handler.setStream(previous)
    lines = [json.loads(x) for x in buffer.getvalue().splitlines() if x.startswith("{")]
    handled = [x for x in lines if x.get("message") == "job handled"]
    assert handled and handled[0]["correlation_id"] == "corr-42"
    assert handled[0]["step"] == "plan@0" and handled[0]["outcome"] == "done"
    assert ran(runtime.current().engine.store, body["id"], "plan@0")


def test_function_url_sample_is_served(deployment: None) -> None:
    import agentfn.functions.aws.http as http

    reply = http.handler(sample("aws/lambda_function_url.json"), LambdaContext())
    assert reply["statusCode"] == 200 and json.loads(reply["body"])["status"] == "ok"


def run_id_from_azure_http_sample() -> str:
    import azure.functions as func

    import agentfn.functions.azure.function_app as app

    raw = sample("azure/http_request.json")
    request = func.HttpRequest(
        method=raw["method"],
        url=raw["url"],
        headers={**raw["headers"], "x-api-key": KEY},
        params=raw["params"],
        route_params=raw["route_params"],
        body=raw["body"].encode(),
    )
    reply = app.http.build().get_user_function()(request)
    assert reply.status_code == 202, reply.get_body()
    run_id: str = json.loads(reply.get_body())["id"]
    return run_id


def test_sqs_pubsub_and_azure_queue_samples_each_run_a_step(
    deployment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sample envelopes, carrying a real job of a real run, through each worker handler."""
    import flask
    from azure.functions.queue import QueueMessage as HostQueueMessage

    import agentfn.functions.aws.worker as aws_worker
    import agentfn.functions.azure.function_app as azure_app
    import agentfn.functions.gcp.main as gcp_main
    from agentfn.adapters.gcp.pubsub import PubSubQueue
    from tests.support.emulators.gcp import ensure_pubsub

    run_id = run_id_from_azure_http_sample()
    store = runtime.current().engine.store

    # SQS batch sample -> Lambda worker: runs plan@0
    job = pending_job()
    event = sample("aws/sqs_batch.json")
    event["Records"][0]["body"] = json.dumps(job)
    assert aws_worker.handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert ran(store, run_id, "plan@0")

    # Azure queue message sample -> queue trigger: runs the next step
    job = pending_job()
    raw = sample("azure/queue_message.json")
    message = HostQueueMessage(
        id=raw["id"],
        body=json.dumps(job).encode(),
        dequeue_count=raw["dequeue_count"],
        pop_receipt=None,
    )
    azure_app.worker.build().get_user_function()(message)
    assert ran(store, run_id, job_of(job)["step"])

    # Pub/Sub push sample -> Cloud Functions worker (an HTTP function): runs the next step.
    # The worker takes pushes from a Pub/Sub subscription only: its queue is the emulator's.
    job = pending_job()
    ensure_pubsub()
    topic = f"samples-{uuid.uuid4().hex[:8]}"
    PubSubQueue.create("agentfn-test", topic)
    monkeypatch.setenv("AGENTFN_QUEUE", f"pubsub://agentfn-test/{topic}")
    runtime.reset()
    envelope = sample("gcp/pubsub_push.json")
    envelope["message"]["data"] = base64.b64encode(json.dumps(job).encode()).decode()
    with flask.Flask(__name__).test_request_context("/", method="POST", json=envelope):
        assert gcp_main.worker(flask.request).status_code == 204
    assert ran(store, run_id, job_of(job)["step"])
    assert store.get(run_id).status is RunStatus.running


def test_sample_jobs_are_valid_step_ready_payloads() -> None:
    for body in (
        json.loads(sample("aws/sqs_batch.json")["Records"][0]["body"]),
        json.loads(base64.b64decode(sample("gcp/pubsub_push.json")["message"]["data"])),
        json.loads(sample("azure/queue_message.json")["body"]),
    ):
        assert set(job_of(body)) >= {"run", "step", "cid"}
    event = StepReadyEvent.model_validate(step_ready("run_1", "plan@0", "cid"))
    assert event.specversion == "1.0" and event.type == "agentfn.step.ready"


def test_exported_schemas_match_the_models(tmp_path: Path) -> None:
    written = {p.name: p.read_text() for p in export_schemas(tmp_path)}
    shipped = SAMPLES.parent / "schemas"
    assert set(written) == {f"{name}.schema.json" for name in EVENTS}
    for name, text in written.items():
        assert (shipped / name).read_text() == text, f"events/schemas/{name} is stale"
