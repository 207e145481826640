"""A run started over HTTP completes through each cloud's queue handler, exactly once.

The jobs travel through the real queue service (SQS on moto's server, Pub/Sub on its emulator,
a Storage Queue on Azurite); the test plays the platform's part — it receives the messages,
hands them to the handler in the platform's event shape, and settles them the way the platform
would (delete on success, redeliver on failure). Each run has a step that fails once, a
parallel fan-out whose branches share a batch, and a message delivered twice.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agentfn.functions import runtime
from agentfn.runs import RunStatus
from tests.support.engine_harness import ledger, project
from tests.support.entry_points import LambdaContext

ROOT = Path(__file__).resolve().parents[2]
KEY = "queue-handler-key"
WORKFLOW = """
nodes:
  - {id: start, type: tool, tool: record, args: {label: start}}
  - id: fan
    type: parallel
    for_each: "['x', 'y', 'z']"
    tool: record
    args: {label: "{{ item }}"}
  - {id: wobbly, type: tool, tool: flaky, args: {label: wobbly}, retry: {max_attempts: 3, backoff: {base_s: 0, max_s: 0, jitter: false}}}
  - {id: end, type: join}
edges:
  - {from: start, to: fan}
  - {from: start, to: wobbly}
  - {from: fan, to: end}
  - {from: wobbly, to: end}
output: "{{ steps.end.output }}"
"""
EXPECTED_OUTPUT = {"fan": ["X", "Y", "Z"], "wobbly": "wobbly"}


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    return project(tmp_path, WORKFLOW, name="handlers")


def configure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, wf: Path, queue_url: str) -> None:
    for key, value in {
        "AGENTFN_HOME": str(tmp_path / "home"),
        "AGENTFN_STORAGE": (tmp_path / "store").as_uri(),
        "AGENTFN_QUEUE": queue_url,
        "AGENTFN_SECRETS": "env://",
        "AGENTFN_PROJECT": str(wf.parent),
        "AGENTFN_API_KEY": KEY,
        "AGENTFN_MAX_ATTEMPTS": "5",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "agentfn-tests",
    }.items():
        monkeypatch.setenv(key, value)
    runtime.reset()


def start_run_over_http(wf: Path) -> str:
    """PUT the workflow and POST a run through the cloud-neutral API (as every handler does)."""
    from agentfn.api import Request

    api = runtime.current().api
    auth = {"authorization": f"Bearer {KEY}"}
    put = api.handle(
        Request(
            "PUT",
            "/v1/workflows/handlers",
            {**auth, "content-type": "application/yaml"},
            body=wf.read_text().encode(),
        )
    )
    assert put.status == 200, put.json()
    started = api.handle(
        Request(
            "POST",
            "/v1/runs",
            {**auth, "content-type": "application/json"},
            body=b'{"workflow": "handlers"}',
        )
    )
    assert started.status == 202, started.json()
    run_id: str = started.json()["id"]
    return run_id


def drive(run_id: str, pull_and_deliver: Callable[[], int], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    store = runtime.current().engine.store
    while time.monotonic() < deadline:
        pull_and_deliver()
        if store.get(run_id).status.terminal:
            return
    raise AssertionError(f"run did not finish: {store.get(run_id)}")


def assert_exactly_once(run_id: str, wf: Path) -> None:
    run = runtime.current().engine.store.get(run_id)
    assert run.status is RunStatus.completed, run.error
    assert run.output == EXPECTED_OUTPUT
    entries = ledger(wf)
    assert sorted(entries) == sorted(["start", "x", "y", "z", "fail:wobbly", "wobbly"]), entries
    records = {r.key: r for r in runtime.current().engine.store.steps(run_id)}
    assert records["wobbly"].attempt == 2 and records["wobbly"].status == "done"


# ---------------------------------------------------------------- AWS: SQS → Lambda


def test_sqs_batches_through_the_lambda_worker(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    workflow: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import boto3

    from agentfn.adapters.aws.sqs import SqsQueue
    from tests.support.emulators.aws import ensure_moto

    endpoint = ensure_moto()
    name = f"handlers-{uuid.uuid4().hex[:8]}"
    SqsQueue.create(name, max_attempts=5)
    configure(monkeypatch, tmp_path, workflow, f"sqs://{name}")
    import agentfn.functions.aws.worker as worker

    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    run_id = start_run_over_http(workflow)
    template = json.loads(
        (Path(__file__).parents[2] / "events/samples/aws/sqs_batch.json").read_text()
    )["Records"][0]
    failures: list[str] = []
    duplicated = False

    def pull_and_deliver() -> int:
        nonlocal duplicated
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            VisibilityTimeout=30,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not got:
            time.sleep(0.05)
            return 0
        records = [
            {
                **template,
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {**template["attributes"], **m["Attributes"]},
            }
            for m in got
        ]
        if not duplicated:  # the first message is delivered twice in one batch
            records.append(dict(records[0]))
            duplicated = True
        reply = worker.handler({"Records": records}, LambdaContext())
        failed = {f["itemIdentifier"] for f in reply["batchItemFailures"]}
        failures.extend(failed)
        for m in got:  # what Lambda does: delete successes, make failures visible again
            if m["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                with contextlib.suppress(sqs.exceptions.ClientError):  # dead-lettered already
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return len(got)

    drive(run_id, pull_and_deliver)
    assert_exactly_once(run_id, workflow)
    assert len(failures) == 1  # only the flaky step's record, never the whole batch
    # the engine's observer wrote CloudWatch metrics as EMF, flushed at each invocation's end
    emitted: dict[str, list[float]] = {}
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            doc = json.loads(line)
            for definition in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = doc[definition["Name"]]
                emitted.setdefault(definition["Name"], []).extend(
                    value if isinstance(value, list) else [value]
                )
    assert emitted["runs_completed"] == [1.0]
    assert len(emitted["step_duration"]) >= 6  # start, three items, wobbly twice, end
    assert emitted["step_done"]


# ---------------------------------------------------------------- Google: Pub/Sub push → HTTP


def test_pubsub_pushes_through_the_http_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workflow: Path
) -> None:
    import functions_framework

    from agentfn.adapters.gcp.pubsub import PubSubQueue
    from tests.support.emulators.gcp import ensure_pubsub
    from tests.support.pubsub_push import PushSubscription

    ensure_pubsub()
    topic = f"handlers-{uuid.uuid4().hex[:8]}"
    queue = PubSubQueue.create("agentfn-test", topic, max_attempts=5)
    configure(monkeypatch, tmp_path, workflow, f"pubsub://agentfn-test/{topic}")
    app = functions_framework.create_app(
        target="worker", source=str(ROOT / "functions" / "gcp" / "main.py"), signature_type="http"
    )
    client = app.test_client()
    push = PushSubscription(f"projects/agentfn-test/subscriptions/{queue.subscription}")
    run_id = start_run_over_http(workflow)
    statuses: list[int] = []

    def post(envelope: dict[str, object]) -> int:
        # The first job is pushed twice (at-least-once): the second push must change nothing.
        for _ in range(2 if not statuses else 1):
            status = client.post("/", json=envelope).status_code
            statuses.append(status)
        return status

    def pull_and_deliver() -> int:
        got = push.push(post)
        if not got:
            time.sleep(0.05)
        return len(got)

    drive(run_id, pull_and_deliver)
    assert_exactly_once(run_id, workflow)
    # The flaky step's retry is a re-published copy, acked like every other push.
    assert set(statuses) == {204}


# ---------------------------------------------------------------- Azure: Storage Queue trigger


def test_storage_queue_messages_through_the_queue_trigger(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workflow: Path
) -> None:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.functions.queue import QueueMessage as HostQueueMessage  # what the host binds
    from azure.storage.queue import QueueClient

    from agentfn.adapters.azure.storage_queue import AzureStorageQueue
    from tests.support.emulators.azure import ensure_azurite

    ensure_azurite()

    name = f"handlers-{uuid.uuid4().hex[:8]}"
    AzureStorageQueue.create(name, max_attempts=5)
    configure(monkeypatch, tmp_path, workflow, f"azqueue://{name}")
    import agentfn.functions.azure.function_app as app

    call = app.worker.build().get_user_function()
    client = QueueClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"], name)
    run_id = start_run_over_http(workflow)
    failures = 0
    duplicated = False

    def pull_and_deliver() -> int:
        nonlocal failures, duplicated
        received = list(
            client.receive_messages(messages_per_page=10, visibility_timeout=30, max_messages=10)
        )
        if not received:
            time.sleep(0.05)
            return 0
        for raw in received:
            body = base64.b64decode(raw.content)  # the host decodes base64 (host.json)
            deliveries = 2 if not duplicated else 1
            duplicated = True
            for _ in range(deliveries):
                message = HostQueueMessage(
                    id=raw.id,
                    body=body,
                    pop_receipt=raw.pop_receipt,
                    dequeue_count=raw.dequeue_count,
                )
                try:
                    call(message)
                    ok = True
                except app.StepNotSettled:
                    ok = False
            if ok:  # the host deletes the message after a successful invocation
                with contextlib.suppress(ResourceNotFoundError):  # dead-lettered already
                    client.delete_message(raw.id, raw.pop_receipt)
            else:
                failures += 1
                client.update_message(raw.id, raw.pop_receipt, visibility_timeout=0)
        return len(received)

    drive(run_id, pull_and_deliver)
    assert_exactly_once(run_id, workflow)
    assert failures == 1


@pytest.fixture(autouse=True)
def _fresh_runtime() -> Iterator[None]:
    runtime.reset()
    yield
    runtime.reset()
