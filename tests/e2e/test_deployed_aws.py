"""The AWS stack as deployed: the zip `agentfn package` builds, run the way Lambda runs it.

The stack is applied against moto's server (the offline AWS provider, as `agentfn deploy`
does it); each Lambda's handler and environment are read back from moto
(``GetFunctionConfiguration`` — exactly what the stack set). Each invocation is a clean
``python3.11 -I -S`` whose path is only the unzipped artifact and whose environment is only
those variables, Lambda's own (``PLATFORM_ENV``) and ``AWS_ENDPOINT_URL``. The test plays the
event source mapping: it receives from the work queue as the trigger does (the queue's own
visibility timeout), hands the records to the worker and deletes what succeeded.

The one value rewritten is Lambda's code root: the platform mounts the zip at ``/var/task``
(``LAMBDA_TASK_ROOT``); here it is unzipped elsewhere, and paths under it follow.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from agentfn.functions.local.deploy import Stack, apply, destroy
from tests.e2e.test_permissions_aws import S3_ACTIONS, table_grants
from tests.support.deployed import PLATFORM_ENV, build_artifact, platform_path, run_clean
from tests.support.emulators.aws import ensure_moto
from tests.support.engine_harness import ledger, project
from tests.support.stacks import stack_values

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # apply + destroy on moto

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "events" / "samples" / "aws"
NAME = "asdeployed"
REGION = "us-east-1"
KEY = "as-deployed-key"
BACKOFF_S = 3
WORKFLOW = f"""
nodes:
  - {{id: start, type: tool, tool: record, args: {{label: start}}}}
  - id: wobbly
    type: tool
    tool: flaky
    args: {{label: wobbly}}
    retry: {{max_attempts: 3, backoff: {{base_s: {BACKOFF_S}, max_s: {BACKOFF_S}, jitter: false}}}}
edges:
  - {{from: start, to: wobbly}}
output: "{{{{ steps.wobbly.output }}}}"
"""
REPLY = "agentfn-test-reply "
CALL = "agentfn-test-call "
Call = tuple[str, str, dict[str, str]]  # service, operation, the parameters naming resources
# Observes every AWS call the function makes (boto3's default session, which the adapters'
# clients come from); changes nothing.
RECORDER = f"""
import boto3, json
def _record(model, params, **_):
    named = {{k: params[k] for k in ("Bucket", "Key", "QueueUrl", "QueueName", "SecretId")
             if k in params}}
    print({CALL!r} + json.dumps([model.service_model.service_name, model.name, named]), flush=True)
boto3.setup_default_session()
boto3.DEFAULT_SESSION.events.register("provide-client-params", _record)
"""
LAMBDA_TASK_ROOT = PLATFORM_ENV["aws"]["LAMBDA_TASK_ROOT"]


@dataclass
class Deployed:
    endpoint: str
    outputs: dict[str, str]
    functions: dict[str, dict[str, Any]]  # stack resource name → GetFunctionConfiguration
    task_root: Path
    workflow: Path
    scratch: Path
    calls: dict[str, list[Call]] = field(default_factory=dict)  # function → AWS calls made


def client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    config = os.environ.get("TF_CLI_CONFIG_FILE", "")
    assert config and "filesystem_mirror" in Path(config).read_text(), (
        "TF_CLI_CONFIG_FILE must point at a CLI config with the AWS provider mirror "
        "(`make test` writes it when the machine image ships the mirror)"
    )
    endpoint = ensure_moto()  # also points this process's boto3 (the deployer) at moto
    base = tmp_path_factory.mktemp("deployed-aws")
    workflow = project(base, WORKFLOW, name="deployed")
    artifact = build_artifact("aws", base / "dist", workflow.parent)
    stack = Stack("aws", base / "stack", {"name": NAME, "region": REGION})
    apply(stack, artifact.archive, artifact.sha256)
    try:
        lam = client("lambda", endpoint)
        names = stack_values("aws", "aws_lambda_function", "function_name")
        functions = {
            fn: lam.get_function_configuration(FunctionName=name.replace("${var.name}", NAME))
            for fn, name in names.items()
        }
        # moto "invokes" a mapped function on every send, in Docker (not on this machine):
        # this test is the trigger instead, so moto's is switched off
        mappings = lam.list_event_source_mappings(FunctionName=functions["worker"]["FunctionArn"])
        for mapping in mappings["EventSourceMappings"]:
            lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
        task_root = platform_path("aws", artifact, base / "lambda")[0]
        outputs = stack.outputs()
        client("secretsmanager", endpoint).put_secret_value(
            SecretId=outputs["secret"], SecretString=KEY
        )  # step 4 of docs/deploy/aws.md
        yield Deployed(endpoint, outputs, functions, task_root, workflow, base)
    finally:
        destroy(stack)


def invoke(deployed: Deployed, fn: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cold-start the function named ``fn`` in the stack and hand it ``events``, in order."""
    config = deployed.functions[fn]
    stack_env: dict[str, str] = config["Environment"]["Variables"]
    root = str(deployed.task_root)

    def mounted(value: str) -> str:
        return (
            root + value[len(LAMBDA_TASK_ROOT) :] if value.startswith(LAMBDA_TASK_ROOT) else value
        )

    env = {
        **PLATFORM_ENV["aws"],
        "LAMBDA_TASK_ROOT": root,
        "AWS_LAMBDA_FUNCTION_NAME": config["FunctionName"],
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config["MemorySize"]),
        **{k: mounted(v) for k, v in stack_env.items()},
        "AWS_ENDPOINT_URL": deployed.endpoint,
    }
    module, attr = config["Handler"].rsplit(".", 1)
    code = (
        RECORDER
        + f"""
import importlib, json
handler = getattr(importlib.import_module({module!r}), {attr!r})

class Context:
    function_name = {config["FunctionName"]!r}
    function_version = "$LATEST"
    invoked_function_arn = {config["FunctionArn"]!r}
    memory_limit_in_mb = {config["MemorySize"]}
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = "2026/01/01/[$LATEST]0123456789abcdef"

    @staticmethod
    def get_remaining_time_in_millis():
        return {config["Timeout"] * 1000}

for event in json.loads({json.dumps(events)!r}):
    print({REPLY!r} + json.dumps(handler(event, Context())), flush=True)
"""
    )
    out = run_clean(
        "aws", code, path=[deployed.task_root], env=env, stack_env=stack_env, cwd=deployed.task_root
    )
    replies = [json.loads(ln[len(REPLY) :]) for ln in out.splitlines() if ln.startswith(REPLY)]
    assert len(replies) == len(events), out[-3000:]
    deployed.calls.setdefault(fn, []).extend(
        tuple(json.loads(ln[len(CALL) :])) for ln in out.splitlines() if ln.startswith(CALL)
    )
    return replies


def http_event(method: str, path: str, body: bytes = b"", **headers: str) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(json.loads((SAMPLES / "apigw_http_v2.json").read_text()))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["headers"] = {"host": event["headers"]["host"], **headers}
    event["body"] = base64.b64encode(body).decode() if body else None
    event["isBase64Encoded"] = bool(body)
    return event


def body_of(reply: dict[str, Any]) -> Any:
    raw = reply.get("body") or ""
    return json.loads(base64.b64decode(raw) if reply.get("isBase64Encoded") else raw)


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Lambda's SQS event for received messages (its record shape, from the sample)."""
    template = json.loads((SAMPLES / "sqs_batch.json").read_text())["Records"][0]
    records = []
    for m in messages:
        attributes = {
            name: {"stringValue": a["StringValue"], "dataType": a["DataType"]}
            for name, a in m.get("MessageAttributes", {}).items()
        }
        records.append(
            {
                **template,
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "md5OfBody": m["MD5OfBody"],
                "attributes": m["Attributes"],
                "messageAttributes": attributes,
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


def receive(sqs: Any, url: str) -> list[dict[str, Any]]:
    """What the event source mapping receives: the queue's own visibility timeout."""
    got: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=1,  # the stack's batch_size (checked in test_terraform_aws)
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    return got


def test_http_and_worker_run_a_workflow_as_deployed(deployed: Deployed) -> None:
    auth = {"authorization": f"Bearer {KEY}"}
    health, unauthenticated, put, started, console = invoke(
        deployed,
        "http",
        [
            http_event("GET", "/healthz"),
            http_event("GET", "/v1/runs"),
            http_event(
                "PUT",
                "/v1/workflows/deployed",
                deployed.workflow.read_text().encode(),
                **auth,
                **{"content-type": "application/yaml"},
            ),
            http_event(
                "POST",
                "/v1/runs",
                b'{"workflow": "deployed"}',
                **auth,
                **{"content-type": "application/json"},
            ),
            http_event("GET", "/"),
        ],
    )
    assert health["statusCode"] == 200 and body_of(health)["status"] == "ok", health
    # the console ships in the artifact: its page (and so its files) load from the zip
    assert console["statusCode"] == 200 and "agentfn console" in console["body"], console
    assert unauthenticated["statusCode"] == 401, unauthenticated
    assert put["statusCode"] == 200, body_of(put)
    assert started["statusCode"] == 202, body_of(started)
    run_id = body_of(started)["id"]

    sqs = client("sqs", deployed.endpoint)
    url = deployed.outputs["queue"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    visibility_s = int(attrs["VisibilityTimeout"])
    assert visibility_s > 10 * BACKOFF_S  # else the retry delay below would prove nothing

    # the first step: one record in, an empty batch response out, the record deleted
    (first,) = receive(sqs, url)
    (reply,) = invoke(deployed, "worker", [sqs_event([first], attrs["QueueArn"])])
    assert reply == {"batchItemFailures": []}
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])

    # the flaky step fails once: reported by its id, and visible again after the engine's
    # backoff — not after the queue's visibility timeout
    (second,) = receive(sqs, url)
    (reply,) = invoke(deployed, "worker", [sqs_event([second], attrs["QueueArn"])])
    failed_at = time.monotonic()
    assert reply == {"batchItemFailures": [{"itemIdentifier": second["MessageId"]}]}
    again: list[dict[str, Any]] = []
    while not again and time.monotonic() - failed_at < 4 * BACKOFF_S:
        again = receive(sqs, url)
        time.sleep(0.2)
    waited = time.monotonic() - failed_at
    assert again, f"not redelivered within {4 * BACKOFF_S}s (visibility timeout {visibility_s}s)"
    assert again[0]["MessageId"] == second["MessageId"]
    assert waited >= BACKOFF_S - 1.5, waited  # the delay is honoured, not skipped
    (reply,) = invoke(deployed, "worker", [sqs_event(again, attrs["QueueArn"])])
    assert reply == {"batchItemFailures": []}
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"])

    (view,) = invoke(deployed, "http", [http_event("GET", f"/v1/runs/{run_id}", **auth)])
    run = body_of(view)
    assert view["statusCode"] == 200 and run["status"] == "completed", run
    assert run["output"] == "wobbly"
    assert ledger(deployed.task_root / "project" / deployed.workflow.name) == [
        "start",
        "fail:wobbly",
        "wobbly",
    ]
    assert not receive(sqs, url)

    # every AWS call the functions made is a row of docs/deploy/aws.md's table
    assert_calls_are_granted(deployed)


IDENTITY = {"http": "http function", "worker": "worker"}  # stack function → table identity


def call_grants(deployed: Deployed, call: Call) -> set[tuple[str, str]]:
    """The (resource, action) pairs of the table any one of which allows ``call``."""
    service, operation, named = call
    out = deployed.outputs
    if service == "s3":
        assert named.get("Bucket") == out["bucket"], call
        resource = "aws_s3_bucket.store/*" if "Key" in named else "aws_s3_bucket.store"
        return {(resource, S3_ACTIONS[operation])}
    if service == "sqs":
        queues = {
            out["queue"]: "aws_sqs_queue.work",
            out["dead_letter_queue"]: "aws_sqs_queue.dead_letter",
        }
        queues.update({url.rsplit("/", 1)[1]: name for url, name in list(queues.items())})
        resource = queues[named.get("QueueUrl") or named["QueueName"]]
        return {(resource, "sqs:" + operation.removesuffix("Batch"))}
    if service == "secretsmanager":
        secret = named["SecretId"]
        assert secret.startswith(f"{NAME}/"), call
        resources = {"local.stack_secrets"}
        if secret == out["secret"]:
            resources.add("aws_secretsmanager_secret.api_key")
        return {(r, f"secretsmanager:{operation}") for r in resources}
    raise AssertionError(f"a call of a service no row names: {call}")


def assert_calls_are_granted(deployed: Deployed) -> None:
    for fn, calls in deployed.calls.items():
        identity = IDENTITY[fn]
        rows = {(r, a) for _, r, a in table_grants({identity})}
        assert calls, f"the {fn} function made no AWS call at all"
        for call in calls:
            assert call_grants(deployed, call) & rows, f"{identity}: no row allows {call}"
    worker_ops = {op for _, op, _ in deployed.calls["worker"]}
    assert "ChangeMessageVisibility" in worker_ops  # the retry delay, set by the worker
