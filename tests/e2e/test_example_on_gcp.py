"""The bundled example workflow on Google Cloud adapters gives what it gives on the local ones.

Cloud Storage (fake-gcs-server) holds the runs, Pub/Sub (the emulator) carries the steps;
secrets come from the environment. The same workflow and input run on FileBlobStore +
SqliteQueue in the same test, and the two runs must agree on output, steps and token usage.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from agentfn.adapters.gcp.gcs import GcsBlobStore
from agentfn.adapters.gcp.pubsub import PubSubQueue
from agentfn.adapters.local.env_secrets import EnvSecretStore
from agentfn.adapters.models.factory import build_model
from agentfn.engine import Engine
from agentfn.model_spec import ModelSpec
from agentfn.ports import Model
from agentfn.runs import Run, RunStatus
from agentfn.workflows import load_blueprint
from tests.support.emulators.gcp import PROJECT, ensure_pubsub, gcs_client
from tests.support.engine_harness import drain, make_engine

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "functions/local/example/workflow.yaml"
INPUT = {"subject": "serverless AI agents"}


def _run(engine: Engine) -> Run:
    run = engine.start(load_blueprint(EXAMPLE), INPUT)
    return drain(engine, run.id, timeout_s=120)


def _gcp_engine() -> tuple[Engine, PubSubQueue]:
    client = gcs_client()
    bucket = f"agentfn-e2e-{uuid.uuid4().hex[:12]}"
    client.create_bucket(bucket)
    ensure_pubsub()
    queue = PubSubQueue.create(PROJECT, f"e2e-{uuid.uuid4().hex[:12]}")
    blobs = GcsBlobStore.from_url(f"gs://{bucket}/agentfn")
    secrets = EnvSecretStore(None)

    def factory(spec: ModelSpec, base_dir: Path) -> Model:
        return build_model(spec, secrets=secrets, base_dir=base_dir)

    return Engine(blobs, queue, model_factory=factory, lease_s=10.0), queue


def test_example_workflow_on_gcs_and_pubsub_matches_local(tmp_path: Path) -> None:
    local = _run(make_engine(tmp_path / "local", lease_s=10.0))
    assert local.status is RunStatus.completed, local.error

    engine, queue = _gcp_engine()
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
    # Nothing left behind: every step job was acked, none dead-lettered.
    assert queue.receive(10, visibility_timeout=30) == []
    assert queue.dead_letters() == []
    # The run record really lives in the bucket, under the store's prefix.
    assert engine.store.get(cloud.id).status is RunStatus.completed
    assert any(cloud.id in key for key in engine.blobs.list().keys)
    print(f"example on GCP emulators: {cloud.steps_run} steps in {elapsed:.2f}s")
