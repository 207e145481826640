"""`agentfn serve` supervises its workers: one that dies is started again, and /healthz says
how many are alive (before: a dead worker stayed dead and /healthz still said ok)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _until(check: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_killed_worker_is_restarted_and_health_tells(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTFN_")}
    serve = subprocess.Popen(
        [sys.executable, "-m", "agentfn.functions.local.cli", "--home", str(tmp_path / "home"),
         "serve", "--port", "0", "--workers", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        banner = serve.stdout.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)", banner).group(1))  # type: ignore[union-attr]
        status, body = _health(port)
        assert status == 200 and body["workers"] == {
            "ok": True, "alive": 1, "expected": 1, "restarts": 0,
        }  # fmt: skip
        (worker,) = _until(lambda: _children(serve.pid))
        os.kill(worker, signal.SIGKILL)
        _until(lambda: _health(port)[1]["workers"]["restarts"] == 1)
        status, body = _until(lambda: (h := _health(port))[0] == 200 and h)
        assert body["status"] == "ok" and body["workers"]["alive"] == 1
        (replacement,) = _until(lambda: _children(serve.pid))
        assert replacement != worker
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)


def test_health_is_503_while_a_component_is_down() -> None:
    from agentfn import Settings
    from agentfn.api import Request
    from agentfn.functions.runtime import Runtime

    runtime = Runtime(Settings.from_env({}))
    runtime.probes["workers"] = lambda: {"ok": False, "alive": 0, "expected": 2, "restarts": 7}
    reply = runtime.api.handle(Request("GET", "/healthz"))
    assert reply.status == 503
    assert reply.json()["status"] == "degraded" and reply.json()["workers"]["alive"] == 0
