"""The bundled example workflow on AWS adapters gives what it gives on the local ones.

S3 holds the runs and SQS carries the steps, both on moto's server; secrets come from the
environment. The same workflow and input run on FileBlobStore + SqliteQueue in the same test,
and the two runs must agree on output, steps and token usage.
"""

from __future__ import annotations

import time
from pathlib import Path

import boto3

from agentfn.engine import Engine
from agentfn.runs import Run, RunStatus
from agentfn.workflows import load_blueprint
from tests.support.aws_engine import moto_engine
from tests.support.engine_harness import drain, make_engine

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "functions/local/example/workflow.yaml"
INPUT = {"subject": "serverless AI agents"}


def _run(engine: Engine) -> Run:
    run = engine.start(load_blueprint(EXAMPLE), INPUT)
    return drain(engine, run.id, timeout_s=120)


def test_example_workflow_on_s3_and_sqs_matches_local(tmp_path: Path) -> None:
    local = _run(make_engine(tmp_path / "local", lease_s=10.0))
    assert local.status is RunStatus.completed, local.error

    engine, queue, bucket = moto_engine()
    started = time.monotonic()
    cloud = _run(engine)
    elapsed = time.monotonic() - started

    assert cloud.status is RunStatus.completed, cloud.error
    assert cloud.output == local.output
    assert cloud.steps_run == local.steps_run
    assert cloud.usage == local.usage
    assert cloud.usage.total_tokens > 0
    assert cloud.cost_usd == local.cost_usd
    assert cloud.finished == local.finished and cloud.skipped == local.skipped
    # Nothing left behind: every step job was acked, none dead-lettered (the DLQ was found
    # through the queue's RedrivePolicy, since the URL does not name it).
    assert queue.receive(10, visibility_timeout=30) == []
    assert queue.dead_letters() == []
    # The run record really lives in the bucket, under the store's prefix.
    assert engine.store.get(cloud.id).status is RunStatus.completed
    assert any(cloud.id in key for key in engine.blobs.list().keys)
    objects = boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]
    assert objects and all(item["Key"].startswith("agentfn/") for item in objects)
    print(f"example on moto (S3 + SQS): {cloud.steps_run} steps in {elapsed:.2f}s")
