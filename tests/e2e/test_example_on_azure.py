"""The bundled example workflow on Azure Blob Storage + Storage Queues (Azurite) finishes with
the same output, step count and token usage as on the local adapters."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError

from agentfn.adapters.azure.blob import AzureBlobStore
from agentfn.adapters.azure.storage_queue import AzureStorageQueue
from agentfn.adapters.local import EnvSecretStore, FileBlobStore, SqliteQueue
from agentfn.adapters.models.factory import build_model
from agentfn.engine import Engine
from agentfn.model_spec import ModelSpec
from agentfn.ports import BlobStore, Model, Queue
from agentfn.runs import Run, RunStatus, RunStore
from agentfn.workflows import load_blueprint
from tests.support.emulators.azure import ensure_azurite
from tests.support.engine_harness import drain

EXAMPLE = Path(__file__).resolve().parents[2] / "functions" / "local" / "example" / "workflow.yaml"
INPUT = {"subject": "serverless AI agents"}


def run_example(blobs: BlobStore, queue: Queue) -> Run:
    secrets = EnvSecretStore(None)

    def factory(spec: ModelSpec, base_dir: Path) -> Model:
        return build_model(spec, secrets=secrets, base_dir=base_dir)

    engine = Engine(blobs, queue, model_factory=factory, lease_s=10.0)
    run = engine.start(load_blueprint(EXAMPLE), INPUT)
    return drain(engine, run.id, timeout_s=120)


@pytest.fixture
def azure_ports() -> Iterator[tuple[AzureBlobStore, AzureStorageQueue]]:
    ensure_azurite()
    suffix = uuid.uuid4().hex[:10]
    blobs = AzureBlobStore(f"agentfn-e2e-{suffix}", "example")
    blobs.create_container()
    queue = AzureStorageQueue.create(f"agentfn-e2e-{suffix}", max_attempts=3)
    try:
        yield blobs, queue
    finally:
        queue.delete_queues()
        with contextlib.suppress(ResourceNotFoundError):
            blobs.service.delete_container(blobs.container)


def test_example_workflow_on_azure_matches_local(
    tmp_path: Path, azure_ports: tuple[AzureBlobStore, AzureStorageQueue]
) -> None:
    local_blobs = FileBlobStore(tmp_path / "blobs")
    local = run_example(local_blobs, SqliteQueue(tmp_path / "queue.db"))
    assert local.status is RunStatus.completed, local

    blobs, queue = azure_ports
    cloud = run_example(blobs, queue)

    assert cloud.status is RunStatus.completed, cloud
    assert cloud.output == local.output
    assert cloud.steps_run == local.steps_run
    assert cloud.usage == local.usage and cloud.usage.total_tokens > 0
    assert cloud.finished == local.finished and cloud.skipped == local.skipped
    assert cloud.fan_out == local.fan_out and cloud.fan_out
    for node, count in cloud.fan_out.items():  # every item marked done, on both
        assert RunStore(blobs).items_marked(cloud.id, node) == count
        assert RunStore(local_blobs).items_marked(local.id, node) == count
    assert cloud.cost_usd == pytest.approx(local.cost_usd)
    assert queue.dead_letters() == []
    assert queue.receive(10, visibility_timeout=30) == []
    # The run really lives in the container, under the store's prefix.
    names = list(blobs.service.get_container_client(blobs.container).list_blob_names())
    assert f"example/runs/{cloud.id}/run.json" in names
    assert all(name.startswith("example/") for name in names)
