"""AWS backends of the contract suite: S3, SQS and Secrets Manager on moto's server.

Every test gets its own bucket, queue pair and secret prefix (uuid names), so tests never see
each other's data; the spec holds only names, and a child process rebuilds the same adapter
from them (the moto address reaches it through the environment, see ensure_moto).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from agentfn.adapters.aws import S3BlobStore, SecretsManagerStore, SqsQueue
from agentfn.ports import SecretStore
from tests.contract.harness import AdapterFactory, SecretHarness
from tests.support.emulators.aws import ensure_moto


def _s3_spec(tmp_path: Path) -> dict[str, Any]:
    ensure_moto()
    bucket = f"agentfn-{uuid.uuid4().hex[:20]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    # A prefix, so every test also checks that it is added and stripped transparently.
    return {"bucket": bucket, "prefix": "data"}


def _s3_cleanup(kwargs: dict[str, Any]) -> None:
    """Empty and drop the test's bucket so moto does not keep 64 MiB objects around."""
    s3 = boto3.client("s3")
    bucket = kwargs["bucket"]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    for upload in uploads:
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    s3.delete_bucket(Bucket=bucket)


_created: set[str] = set()  # queues made in this process, dropped by the next cleanup


def _sqs_spec(tmp_path: Path) -> dict[str, Any]:
    ensure_moto()
    name = f"agentfn-{uuid.uuid4().hex[:16]}"
    SqsQueue.create(name)
    _created.add(name)
    return {"queue": name}


def _build_queue(queue: str, max_attempts: int = 5, **options: Any) -> SqsQueue:
    """Create (idempotently) the queue pair with ``maxReceiveCount = max_attempts``, so tests
    that ask for another ``max_attempts`` exercise SQS's own redrive."""
    return SqsQueue.create(queue, max_attempts, **options)


def _sqs_cleanup(kwargs: dict[str, Any]) -> None:
    sqs = boto3.client("sqs")
    names = {kwargs["queue"], *_created}
    _created.clear()
    for name in names:
        for queue in (name, f"{name}-dlq"):
            with contextlib.suppress(ClientError):
                sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"])


class AwsSecretHarness(SecretHarness):
    """Secrets under a per-test prefix in moto's Secrets Manager."""

    name = "aws"
    fake_clock = True

    def __init__(self, tmp_path: Path) -> None:
        ensure_moto()
        self.prefix = f"agentfn-test/{uuid.uuid4().hex[:12]}/"
        self.client = boto3.client("secretsmanager")

    def set_secret(self, name: str, value: str) -> None:
        secret_id = self.prefix + name
        try:
            self.client.put_secret_value(SecretId=secret_id, SecretString=value)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            self.client.create_secret(Name=secret_id, SecretString=value)

    def make(self, *, ttl_s: float = 60.0, clock: Callable[[], float] | None = None) -> SecretStore:
        return SecretsManagerStore(self.prefix, ttl_s=ttl_s, clock=clock or time.monotonic)


BLOBSTORES = {
    "aws": AdapterFactory(spec=_s3_spec, build=S3BlobStore, cleanup=_s3_cleanup),
}

QUEUES = {
    # SQS counts whole seconds and has no message priorities (see docs/adapters/aws.md).
    "aws": AdapterFactory(
        spec=_sqs_spec, build=_build_queue, cleanup=_sqs_cleanup, unit=1.0, priority=False
    ),
}

SECRET_STORES: dict[str, Callable[[Path], SecretHarness]] = {"aws": AwsSecretHarness}
