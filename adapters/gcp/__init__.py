"""Google Cloud adapters: Cloud Storage blobs, Pub/Sub queue, Secret Manager secrets.

Each class is imported on first access, so a deployment pays only for the SDK it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentfn.adapters._lazy import load

if TYPE_CHECKING:
    from agentfn.adapters.gcp.gcs import GcsBlobStore
    from agentfn.adapters.gcp.pubsub import PubSubQueue
    from agentfn.adapters.gcp.secret_manager import GcpSecretManagerStore

__all__ = ["GcpSecretManagerStore", "GcsBlobStore", "PubSubQueue"]

_MODULES = {
    "GcsBlobStore": "agentfn.adapters.gcp.gcs",
    "PubSubQueue": "agentfn.adapters.gcp.pubsub",
    "GcpSecretManagerStore": "agentfn.adapters.gcp.secret_manager",
}


def __getattr__(name: str) -> Any:
    return load(__name__, _MODULES, name)
