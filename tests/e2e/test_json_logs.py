"""Every entry point logs JSON lines that carry the request's correlation id, from the HTTP
request into the engine: Lambda (Powertools), Cloud Functions (functions-framework serving
main.py), Azure Functions (function_app.py) and `agentfn serve` — each in a process of its own,
as its platform runs it, its log read from its output."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from agentfn.functions.local.cli import EXAMPLE
from tests.support.entry_points import REPO, gcp_entry, local_entry

KEY = "json-logs-key-0123456789"
WORKFLOW = (EXAMPLE / "workflow.yaml").read_text()


def settings_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "AGENTFN_HOME": str(home),
        "AGENTFN_STORAGE": (home / "store").as_uri(),
        "AGENTFN_QUEUE": f"sqlite://{home / 'queue.db'}",
        "AGENTFN_SECRETS": "env://",
        "AGENTFN_PROJECT": str(EXAMPLE),
        "AGENTFN_TOOL_MODULES": "tools.py",
        "AGENTFN_API_KEY": KEY,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "agentfn-tests",
    }


def requests(send: Any, cid: str) -> None:
    auth = {"authorization": f"Bearer {KEY}", "x-correlation-id": cid}
    put = send(
        "PUT",
        "/v1/workflows/research-brief",
        headers={**auth, "content-type": "application/yaml"},
        body=WORKFLOW.encode(),
        query={},
    )
    assert put.status == 200, put.body
    body = json.dumps({"workflow": "research-brief", "input": {"subject": "logs"}}).encode()
    run = send(
        "POST",
        "/v1/runs",
        headers={**auth, "content-type": "application/json"},
        body=body,
        query={},
    )
    assert run.status == 202, run.body


def json_lines(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def assert_correlated(text: str, cid: str) -> None:
    lines = json_lines(text)
    started = [d for d in lines if d.get("message") == "run started"]
    assert started, text[-3000:]
    assert all(d.get("correlation_id") == cid for d in started), started


IN_PROCESS = """
import sys
from tests.support.entry_points import {entry}
from tests.e2e.test_json_logs import requests
entry = {entry}()
requests(entry.send, sys.argv[1])
entry.close()
"""


@pytest.mark.parametrize("entry", ["LambdaEntry", "AzureEntry"])
def test_function_entry_points_log_json_with_the_correlation_id(tmp_path: Path, entry: str) -> None:
    cid = f"cid-{entry.lower()}"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **settings_env(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(IN_PROCESS.format(entry=entry)), cid],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert_correlated(done.stdout + done.stderr, cid)


@pytest.mark.parametrize("make", [gcp_entry, local_entry], ids=["gcp", "local"])
def test_served_entry_points_log_json_with_the_correlation_id(tmp_path: Path, make: Any) -> None:
    cid = f"cid-{make.__name__}"
    entry = make(settings_env(tmp_path / "home"))
    try:
        requests(entry.send, cid)
    finally:
        entry.close()
    text = entry.log.read_text()
    assert_correlated(text, cid)
    if make is local_entry:  # the server's own request lines carry it too
        served = [d for d in json_lines(text) if d.get("logger") == "agentfn.serve"]
        assert any(d.get("correlation_id") == cid for d in served), served
