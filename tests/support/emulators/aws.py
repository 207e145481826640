"""moto's server: S3, SQS, Secrets Manager (and the rest of AWS) on one loopback port.

``ensure_moto()`` starts it once per test session and exports ``AWS_ENDPOINT_URL`` plus dummy
credentials and region into ``os.environ``, so boto3 clients built with no arguments — in this
process and in every child process a test starts — talk to it and to nothing else.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from urllib.parse import urlparse

from tests.support.emulators import (
    REPO_ROOT,
    EmulatorError,
    Server,
    ensure,
    free_port,
    start_server,
)

__all__ = ["ensure_moto", "reset_moto"]

# Our own variable: the address of the moto server this session started (children reuse it).
# AWS_ENDPOINT_URL alone is not trusted for that, since a developer may have it pointing at a
# real endpoint; whatever it held is replaced by the loopback address.
MOTO_URL_VAR = "AGENTFN_TEST_MOTO_URL"

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
# Settings that could send a boto3 client anywhere but the emulator, or to real credentials.
UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN")


def _moto_server_command(port: int) -> list[str]:
    """moto's server, with SQS receives atomic as on SQS (see moto_sqs_atomic)."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        raise EmulatorError(
            f"moto server could not start: {sys.executable} cannot import moto.server "
            "(install 'moto[server]')"
        ) from None
    module = "tests.support.emulators.moto_sqs_atomic"
    return [sys.executable, "-m", module, "-H", "127.0.0.1", "-p", str(port)]


def _start() -> Server:
    port = free_port()
    return start_server(
        "moto",
        _moto_server_command(port),
        port=port,
        env={**DUMMY_ENV, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
        timeout_s=60,
        cwd=REPO_ROOT,  # where `-m tests.support.emulators.moto_sqs_atomic` resolves
    )


def ensure_moto() -> str:
    """Start moto's server once and point every boto3 client of this session at it."""
    url = ensure("moto", MOTO_URL_VAR, _start)
    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise EmulatorError(f"moto server address {url!r} is not on loopback")
    os.environ["AWS_ENDPOINT_URL"] = url
    os.environ.update(DUMMY_ENV)
    for name in UNSET:
        os.environ.pop(name, None)
    return url


def reset_moto() -> None:
    """Drop every resource moto holds (``POST /moto-api/reset``)."""
    url = ensure_moto()
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != 200:
            raise EmulatorError(f"moto reset answered HTTP {response.status}")
