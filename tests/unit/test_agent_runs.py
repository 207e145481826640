"""A stored agent asked a prompt on the models of a stored workflow: it runs and answers; an
unknown agent or workflow is a 404 naming which, a body without the workflow a 422."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentfn.api import Request
from agentfn.functions.runtime import Runtime
from agentfn.settings import Settings
from tests.support.engine_harness import HEADER, RULES, TOOLS

KEY = "agent-runs-key-0123456789"
FLOW = "name: base\n" + HEADER + "nodes:\n  - {id: a, type: agent, agent: echo}\n"


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    project = tmp_path / "project"
    project.mkdir()
    (project / "tools.py").write_text(TOOLS)
    (project / "rules.yaml").write_text(RULES)
    (tmp_path / ".env").write_text(f"AGENTFN_API_KEY={KEY}\n")
    env = {"AGENTFN_PROJECT": str(project), "AGENTFN_SECRETS": f"env://{tmp_path / '.env'}"}
    rt = Runtime(Settings.from_env(env, home=tmp_path / "home"))
    assert call(rt, "PUT", "/v1/workflows/base", FLOW, "application/yaml")[0] == 200
    assert (
        call(rt, "PUT", "/v1/agents/summarizer", {"instructions": "Sum up.", "tools": ["record"]})[
            0
        ]
        == 200
    )
    return rt


def call(
    rt: Runtime, method: str, path: str, body: Any = None, ctype: str = "application/json"
) -> tuple[int, Any]:
    raw = (
        body.encode()
        if isinstance(body, str)
        else json.dumps(body).encode()
        if body is not None
        else b""
    )
    headers = {"authorization": f"Bearer {KEY}", "content-type": ctype}
    reply = rt.api.handle(Request(method, path, headers=headers, body=raw))
    return reply.status, reply.json()


def test_a_stored_agent_answers_on_a_workflows_models(runtime: Runtime) -> None:
    status, run = call(
        runtime,
        "POST",
        "/v1/agents/summarizer/runs",
        {"prompt": "three words here", "models_from": "base"},
    )
    assert status == 202, run
    while messages := runtime.queue.receive(1, visibility_timeout=30):
        runtime.engine.handle(messages[0])
    done = call(runtime, "GET", f"/v1/runs/{run['id']}")[1]
    assert done["status"] == "completed" and done["output"] == "echo: three words here"
    assert done["workflow"] == "agent.summarizer" and done["cost_usd"] > 0  # base's prices
    assert done["graph"]["nodes"] == [{"id": "answer", "type": "agent", "agent": "summarizer"}]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/v1/agents/ghost/runs", {"prompt": "x", "models_from": "base"}, 404, "name"),
        ("/v1/agents/summarizer/runs", {"prompt": "x", "models_from": "nope"}, 404, "workflow"),
        ("/v1/agents/summarizer/runs", {"prompt": "x"}, 422, "models_from"),
        ("/v1/agents/summarizer/runs", {"prompt": "", "models_from": "base"}, 422, "prompt"),
    ],
)
def test_bad_agent_runs_are_refused_naming_what(
    runtime: Runtime, path: str, body: dict[str, Any], status: int, field: str
) -> None:
    got, reply = call(runtime, "POST", path, body)
    assert (got, reply["error"]["field"]) == (status, field), reply
