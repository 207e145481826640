"""Azure backends of the contract suite: Azurite for blobs and queues, a local Key Vault.

Every test gets its own container / queues (unique names); ``cleanup`` deletes what this
process created so far, including the fresh queues a test asked for. Specs carry only names:
a child process rebuilds the adapter from them and the connection string it inherits.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from agentfn.adapters.azure.blob import AzureBlobStore
from agentfn.adapters.azure.key_vault import KeyVaultSecretStore
from agentfn.adapters.azure.storage_queue import AzureStorageQueue
from agentfn.ports import SecretStore
from tests.contract.harness import AdapterFactory, SecretHarness
from tests.support.emulators.azure import ensure_azurite
from tests.support.fake_key_vault import FakeKeyVault, ensure_fake_key_vault

_created_lock = threading.Lock()
_containers: list[str] = []
_queues: list[str] = []


def _unique(kind: str) -> str:
    return f"agentfn-{kind}-{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------- blobs


def _blob_spec(tmp_path: Path) -> dict[str, Any]:
    ensure_azurite()
    container = _unique("c")
    AzureBlobStore(container).create_container()
    with _created_lock:
        _containers.append(container)
    return {"container": container, "prefix": "contract"}


def _blob_cleanup(kwargs: dict[str, Any]) -> None:
    with _created_lock:
        names, _containers[:] = list(_containers), []
    for name in names:
        store = AzureBlobStore(name)
        with contextlib.suppress(ResourceNotFoundError):
            store.service.delete_container(name)


# --------------------------------------------------------------------------- queues


def _queue_spec(tmp_path: Path) -> dict[str, Any]:
    ensure_azurite()
    name = _unique("q")
    AzureStorageQueue.create(name)
    with _created_lock:
        _queues.append(name)
    return {"queue_name": name}


def _queue_cleanup(kwargs: dict[str, Any]) -> None:
    with _created_lock:
        names, _queues[:] = list(_queues), []
    for name in names:
        AzureStorageQueue(name).delete_queues()


BLOBSTORES = {
    "azure": AdapterFactory(spec=_blob_spec, build=AzureBlobStore, cleanup=_blob_cleanup),
}

QUEUES = {
    # Storage Queues count whole seconds and keep their own clock: tests sleep in 1 s units.
    "azure": AdapterFactory(
        spec=_queue_spec, build=AzureStorageQueue, cleanup=_queue_cleanup, unit=1.0
    ),
}


# --------------------------------------------------------------------------- secrets


class AzureSecretHarness(SecretHarness):
    """Secrets in the fake Key Vault, written over its REST API like ``az keyvault secret set``.

    The store reads through the official SDK, challenge authentication included.
    """

    name = "azure"
    fake_clock = True

    def __init__(self, tmp_path: Path) -> None:
        self.vault: FakeKeyVault = ensure_fake_key_vault()
        self.vault.reset()  # each test starts from an empty vault

    def set_secret(self, name: str, value: str) -> None:
        self.vault.set_secret(name.replace("_", "-"), value)

    def make(self, *, ttl_s: float = 60.0, clock: Callable[[], float] | None = None) -> SecretStore:
        return KeyVaultSecretStore(
            self.vault.url,
            credential=self.vault.credential(),
            ttl_s=ttl_s,
            clock=clock if clock else time.monotonic,
            connection_verify=str(self.vault.ca_path),
        )


SECRET_STORES = {"azure": AzureSecretHarness}
