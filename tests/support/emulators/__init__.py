"""Real servers for adapter and handler tests, started on loopback by the test harness.

Each emulator module (aws.py, gcp.py, azure.py, …) exposes an ``ensure_*()`` function that
returns the server's address, starting the server at most once per test session. The address
is also exported in an environment variable, so child processes started by tests reuse the
same server instead of starting their own. Servers are stopped at the end of the session
(tests/conftest.py) by their own pid. A server that cannot start fails the tests that need it
with a message saying which server and why: tests are never skipped for a missing server.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
LOG_DIR = REPO_ROOT / ".emulators" / "logs"


class EmulatorError(RuntimeError):
    """A test server could not start; the message names it and says why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, *, timeout_s: float, proc: subprocess.Popen[bytes], name: str, log: Path
) -> None:
    """Poll the port until it accepts connections (never a blind sleep)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmulatorError(
                f"{name} exited with code {proc.returncode} before listening on 127.0.0.1:{port}; "
                f"last output:\n{tail(log)}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise EmulatorError(
        f"{name} did not listen on 127.0.0.1:{port} within {timeout_s:g}s; last output:\n{tail(log)}"
    )


def tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop this server's own process group (never anything matched by name)."""
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


_servers: dict[str, Server] = {}
_lock = threading.Lock()


def start_server(
    name: str,
    command: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 60.0,
    cwd: Path | None = None,
) -> Server:
    """Start ``command`` (which must listen on ``port``) and wait until it does."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{name}.log"
    try:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                list(command),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,  # its own process group: stopped together, by pid
            )
    except OSError as exc:
        raise EmulatorError(f"{name} could not start: {command[0]}: {exc}") from None
    server = Server(name=name, port=port, proc=proc, log=log)
    try:
        wait_for_port(port, timeout_s=timeout_s, proc=proc, name=name, log=log)
    except EmulatorError:
        server.stop()
        raise
    return server


def ensure(name: str, env_var: str, start: Callable[[], Server]) -> str:
    """Return the address of server ``name``, starting it once; reuse ``env_var`` if set."""
    existing = os.environ.get(env_var)
    if existing:
        return existing
    with _lock:
        existing = os.environ.get(env_var)
        if existing:
            return existing
        server = start()
        _servers[name] = server
        os.environ[env_var] = server.url
        return server.url


def stop_all() -> None:
    with _lock:
        for server in _servers.values():
            server.stop()
        _servers.clear()


atexit.register(stop_all)
