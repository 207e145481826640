"""Azurite (Blob + Queue + Table) on loopback for the Azure adapter tests.

One ``azurite`` process serves blobs and queues on two free ports, in memory (nothing is
written to disk, so nothing needs cleaning up). Its connection string for the well-known
emulator account ``devstoreaccount1`` is exported as ``AGENTFN_TEST_AZURITE`` (so child
processes reuse this server) and as ``AZURE_STORAGE_CONNECTION_STRING`` (what the adapters
read), overriding any value from the developer's shell so no test can reach a real account.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.emulators import (
    REPO_ROOT,
    EmulatorError,
    Server,
    ensure,
    free_port,
    start_server,
    wait_for_port,
)

AZURITE = REPO_ROOT / ".emulators" / "node_modules" / ".bin" / "azurite"
ENV_VAR = "AGENTFN_TEST_AZURITE"
ACCOUNT = "devstoreaccount1"
# The emulator's published, well-known key (not a secret: every Azurite install uses it).
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
MEMORY_LIMIT_MB = 512  # cap on in-memory blob extents; tests delete their containers


def connection_string(blob_port: int, queue_port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{blob_port}/{ACCOUNT};"
        f"QueueEndpoint=http://127.0.0.1:{queue_port}/{ACCOUNT};"
    )


@dataclass
class AzuriteServer(Server):
    """The blob port is the one waited on; ``url`` is the whole connection string."""

    queue_port: int = 0

    @property
    def url(self) -> str:
        return connection_string(self.port, self.queue_port)


def _start() -> Server:
    if not AZURITE.exists():
        raise EmulatorError(
            f"Azurite could not start: {AZURITE} is missing (install it with "
            "`npm install --prefix .emulators azurite`)"
        )
    blob, queue, table = free_port(), free_port(), free_port()
    # --inMemoryPersistence forbids --location; the work dir only holds what Azurite may still
    # write next to its cwd, so it gets a throwaway one.
    workdir = tempfile.mkdtemp(prefix="azurite-")
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    command = [
        str(AZURITE),
        "--silent",
        "--disableTelemetry",  # else it phones home
        "--inMemoryPersistence",
        "--extentMemoryLimit",
        str(MEMORY_LIMIT_MB),
        "--skipApiVersionCheck",  # the SDKs are newer than the emulator
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(blob),
        "--queueHost",
        "127.0.0.1",
        "--queuePort",
        str(queue),
        "--tableHost",
        "127.0.0.1",
        "--tablePort",
        str(table),
    ]
    plain = start_server("azurite", command, port=blob, cwd=Path(workdir), timeout_s=60)
    server = AzuriteServer(
        name=plain.name, port=plain.port, proc=plain.proc, log=plain.log, queue_port=queue
    )
    try:
        wait_for_port(queue, timeout_s=30, proc=server.proc, name="azurite (queue)", log=server.log)
    except EmulatorError:
        server.stop()
        raise
    return server


def ensure_azurite() -> str:
    """Start Azurite once per session; return its connection string (also exported)."""
    conn = ensure("azurite", ENV_VAR, _start)
    if "127.0.0.1" not in conn or "core.windows.net" in conn:
        raise EmulatorError(f"{ENV_VAR} does not point at a loopback Azurite")
    os.environ["AZURE_STORAGE_CONNECTION_STRING"] = conn
    return conn
