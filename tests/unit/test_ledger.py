"""The tenant's ledger over the real local runtime: a finished run's totals, per workflow and
agent, in GET /v1/metrics and the cost reports (JSON and CSV), retries and dead letters
counted, other tenants' runs never in it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from agentfn.api import Request
from agentfn.functions.runtime import Runtime
from agentfn.roles import Role
from agentfn.settings import Settings
from tests.support.engine_harness import HEADER, RULES, TOOLS

FLOW = """name: costly
{header}
nodes:
  - {{id: ask, type: agent, agent: helper, prompt: "label alpha"}}
  - {{id: again, type: agent, agent: echo, prompt: "hello"}}
  - {{id: wobbly, type: tool, tool: flaky, args: {{label: w}}, retry: {{max_attempts: 3, backoff: {{base_s: 0, max_s: 0, jitter: false}}}}}}
edges:
  - {{from: ask, to: again}}
"""


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    project = tmp_path / "project"
    project.mkdir()
    (project / "tools.py").write_text(TOOLS)
    (project / "rules.yaml").write_text(RULES)
    return Runtime(Settings.from_env({"AGENTFN_PROJECT": str(project)}, home=tmp_path / "home"))


def call(
    rt: Runtime, key: str, method: str, path: str, body: Any = None, **kw: Any
) -> tuple[int, Any]:
    ctype = kw.pop("content_type", "application/json")
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode() if body else b""
    headers = {"authorization": f"Bearer {key}", "content-type": ctype}
    reply = rt.api.handle(
        Request(method, path, headers=headers, body=raw, query=kw.get("query", {}))
    )
    if reply.headers.get("content-type") == "application/json":
        return reply.status, reply.json()
    return reply.status, reply.body.decode()


def run_costly(rt: Runtime, key: str) -> dict[str, Any]:
    text = FLOW.format(header=HEADER.strip())
    assert (
        call(rt, key, "PUT", "/v1/workflows/costly", text, content_type="application/yaml")[0]
        == 200
    )
    status, run = call(rt, key, "POST", "/v1/runs", {"workflow": "costly", "input": {}})
    assert status == 202, run
    while messages := rt.queue.receive(1, visibility_timeout=30):
        rt.engine.handle(messages[0])
    done = call(rt, key, "GET", f"/v1/runs/{run['id']}")[1]
    assert done["status"] == "completed", done
    return done  # type: ignore[no-any-return]


def test_a_finished_run_is_in_the_metrics_and_the_costs(runtime: Runtime) -> None:
    admin = runtime.keys.create("acme", Role.tenant_admin, name="a", created_by="t").key
    done = run_costly(runtime, admin)
    status, metrics = call(runtime, admin, "GET", "/v1/metrics", query={"days": "2"})
    assert status == 200 and len(metrics["days"]) == 2
    today = metrics["days"][-1]
    assert (today["runs"], today["completed"], today["failed"]) == (1, 1, 0)
    assert today["tokens"] == done["tokens"] and today["cost_usd"] == pytest.approx(
        done["cost_usd"]
    )
    assert today["retries"] == 1 and today["dead_letters"] == 0  # the flaky step, once
    assert today["steps"] == done["steps"] and today["mean_run_seconds"] >= 0
    assert metrics["days"][0]["runs"] == 0  # yesterday: nothing

    status, costs = call(runtime, admin, "GET", "/v1/costs", query={"days": "1"})
    assert status == 200
    by_agent = {r["agent"]: r for r in costs["items"]}
    assert set(by_agent) == {"helper", "echo"}
    assert all(r["workflow"] == "costly" for r in costs["items"])
    assert by_agent["helper"]["calls"] == 2 and by_agent["echo"]["calls"] == 1  # turns
    assert sum(r["cost_usd"] for r in costs["items"]) == pytest.approx(done["cost_usd"])
    assert (
        sum(r["prompt_tokens"] + r["completion_tokens"] for r in costs["items"]) == done["tokens"]
    )

    status, text = call(runtime, admin, "GET", "/v1/costs.csv", query={"days": "1"})
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["workflow"], r["agent"]) for r in rows] == [("costly", "echo"), ("costly", "helper")]
    assert sum(float(r["cost_usd"]) for r in rows) == pytest.approx(done["cost_usd"])


def test_another_tenants_runs_are_not_in_the_ledger(runtime: Runtime) -> None:
    a = runtime.keys.create("acme", Role.tenant_admin, name="a", created_by="t").key
    b = runtime.keys.create("bravo", Role.tenant_admin, name="b", created_by="t").key
    run_costly(runtime, a)
    assert call(runtime, b, "GET", "/v1/metrics")[1]["days"][-1]["runs"] == 0
    assert call(runtime, b, "GET", "/v1/costs")[1]["items"] == []


@pytest.mark.parametrize("days", ["0", "367", "x"])
def test_a_bad_window_is_refused_naming_days(runtime: Runtime, days: str) -> None:
    viewer = runtime.keys.create("acme", Role.viewer, name="v", created_by="t").key
    status, reply = call(runtime, viewer, "GET", "/v1/metrics", query={"days": days})
    assert status == 422 and reply["error"]["field"] == "days"
