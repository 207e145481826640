"""An engine on the AWS adapters against moto's server: S3 for runs, SQS for steps, built from
URLs as a deployment builds them (AGENTFN_STORAGE / AGENTFN_QUEUE)."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3

from agentfn.adapters.aws import S3BlobStore, SqsQueue
from agentfn.adapters.local.env_secrets import EnvSecretStore
from agentfn.adapters.models.factory import build_model
from agentfn.engine import Engine
from agentfn.model_spec import ModelSpec
from agentfn.ports import Model
from tests.support.emulators.aws import ensure_moto


def moto_engine(*, max_attempts: int = 5) -> tuple[Engine, SqsQueue, str]:
    """A fresh bucket and queue (with its DLQ and redrive policy, as Terraform makes them);
    returns the engine, its queue and the bucket's name."""
    ensure_moto()
    bucket = f"agentfn-e2e-{uuid.uuid4().hex[:12]}"
    name = f"agentfn-e2e-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    SqsQueue.create(name, max_attempts=max_attempts)
    blobs = S3BlobStore.from_url(f"s3://{bucket}/agentfn")
    queue = SqsQueue.from_url(f"sqs://{name}", max_attempts=max_attempts)
    secrets = EnvSecretStore(None)

    def factory(spec: ModelSpec, base_dir: Path) -> Model:
        return build_model(spec, secrets=secrets, base_dir=base_dir)

    engine = Engine(blobs, queue, model_factory=factory, lease_s=10.0, delivery_limit=max_attempts)
    return engine, queue, bucket
