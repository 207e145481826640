"""Google Cloud backends for the contract suite.

Blobs run on fake-gcs-server (a bucket per test), the queue on the Pub/Sub emulator (fresh
topics and subscriptions per queue, made by ``PubSubQueue.create``), secrets on the local
Secret Manager REST server (a project per test). Specs hold only names, so child processes
rebuild the same adapters; the emulators' addresses reach them through the environment.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import google_crc32c
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud.secretmanager_v1 import (
    Replication,
    Secret,
    SecretManagerServiceClient,
    SecretPayload,
)

from agentfn.adapters.gcp.gcs import GcsBlobStore
from agentfn.adapters.gcp.pubsub import PubSubQueue
from agentfn.adapters.gcp.secret_manager import GcpSecretManagerStore
from agentfn.ports import SecretStore
from tests.contract.harness import AdapterFactory, SecretHarness
from tests.support.emulators.gcp import PROJECT, ensure_pubsub, gcs_client, secret_manager

# --------------------------------------------------------------------------- blobs


def _blob_spec(tmp_path: Path) -> dict[str, Any]:
    client = gcs_client()
    bucket = f"agentfn-{uuid.uuid4().hex[:16]}"
    client.create_bucket(bucket)
    return {"bucket": bucket, "prefix": "contract/store"}


def _blob_cleanup(kwargs: dict[str, Any]) -> None:
    """Delete the test's objects and bucket: the emulator keeps everything in memory."""
    client = gcs_client()
    bucket = client.bucket(kwargs["bucket"])
    for blob in client.list_blobs(bucket, fields="items(name),nextPageToken"):
        with contextlib.suppress(gexc.NotFound):
            blob.delete()
    with contextlib.suppress(gexc.NotFound):
        bucket.delete()


# --------------------------------------------------------------------------- queues


def _queue_spec(tmp_path: Path) -> dict[str, Any]:
    ensure_pubsub()
    topic = f"q-{uuid.uuid4().hex[:16]}"
    PubSubQueue.create(PROJECT, topic)
    return {"project": PROJECT, "topic": topic}


def _queue_cleanup(kwargs: dict[str, Any]) -> None:
    queue = PubSubQueue(kwargs["project"], kwargs["topic"])
    sub, pub = queue._sub(), queue._pub()
    for subscription in (queue.subscription, queue.dead_letter_subscription):
        with contextlib.suppress(gexc.NotFound):
            sub.delete_subscription(subscription=sub.subscription_path(PROJECT, subscription))
    for topic in (queue.topic, queue.dead_letter_topic):
        with contextlib.suppress(gexc.NotFound):
            pub.delete_topic(topic=pub.topic_path(PROJECT, topic))


# --------------------------------------------------------------------------- secrets


def secret_manager_client() -> SecretManagerServiceClient:
    """The official client, REST transport, pointed at the local Secret Manager."""
    return SecretManagerServiceClient(
        transport="rest",
        client_options={"api_endpoint": secret_manager().url},
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
    )


def put_secret(client: SecretManagerServiceClient, project: str, name: str, value: str) -> None:
    """Create ``name`` if needed and add ``value`` as its newest version (a rotation)."""
    with contextlib.suppress(gexc.Conflict):  # 409 ALREADY_EXISTS over REST
        client.create_secret(
            parent=f"projects/{project}",
            secret_id=name,
            secret=Secret(replication=Replication(automatic=Replication.Automatic())),
        )
    data = value.encode("utf-8")
    client.add_secret_version(
        parent=f"projects/{project}/secrets/{name}",
        payload=SecretPayload(data=data, data_crc32c=google_crc32c.value(data)),
    )


class GcpSecretHarness(SecretHarness):
    """Secrets written through the Secret Manager REST protocol, one project per test."""

    name = "gcp"
    fake_clock = True

    def __init__(self, tmp_path: Path) -> None:
        self.client = secret_manager_client()
        self.project = f"agentfn-{uuid.uuid4().hex[:12]}"

    def set_secret(self, name: str, value: str) -> None:
        put_secret(self.client, self.project, name, value)

    def make(self, *, ttl_s: float = 60.0, clock: Callable[[], float] | None = None) -> SecretStore:
        # No client passed: the store finds the server through SECRET_MANAGER_EMULATOR_HOST.
        return GcpSecretManagerStore(
            self.project, ttl_s=ttl_s, clock=clock if clock else time.monotonic
        )


# --------------------------------------------------------------------------- registries

BLOBSTORES = {
    "gcp": AdapterFactory(spec=_blob_spec, build=GcsBlobStore, cleanup=_blob_cleanup),
}

QUEUES = {
    # Pub/Sub leases count whole seconds; it has no message priorities (see docs/adapters/gcp.md).
    "gcp": AdapterFactory(
        spec=_queue_spec, build=PubSubQueue, cleanup=_queue_cleanup, unit=1.0, priority=False
    ),
}

SECRET_STORES: dict[str, Callable[[Path], SecretHarness]] = {
    "gcp": GcpSecretHarness,
}
