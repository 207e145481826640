"""One table of requests through all four HTTP entry points: identical statuses and bodies.

The AWS Lambda handler gets API Gateway v2 events and a Lambda context; the GCP function is
served for real by functions-framework; the Azure function gets azure.functions.HttpRequest
objects (no Functions host runs here); the local server is `agentfn serve`. Each entry point
runs against its own fresh local store, and the sequence of replies must be the same.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agentfn.functions.local.cli import EXAMPLE
from tests.support.entry_points import (
    AzureEntry,
    EntryPoint,
    LambdaEntry,
    Reply,
    gcp_entry,
    local_entry,
)

KEY = "test-key-0123456789"
AUTH = {"authorization": f"Bearer {KEY}"}
JSON = {"content-type": "application/json"}
WORKFLOW = (EXAMPLE / "workflow.yaml").read_text()
# 9 levels of 9 aliases each: 9**9 strings once expanded, a few hundred bytes as text
ALIAS_BOMB = (
    "a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))
    + "name: bomb\nnodes: *a9\n"
)


@dataclass
class Case:
    name: str
    method: str
    path: str
    status: int
    body: Any = None  # dict/list → JSON, str → text, bytes → raw
    headers: dict[str, str] = field(default_factory=lambda: {**AUTH, **JSON})
    query: dict[str, str] = field(default_factory=dict)
    error_field: str | None = None

    def raw_body(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


CASES = [
    Case("health", "GET", "/healthz", 200, headers={}),
    Case("openapi", "GET", "/openapi.json", 200, headers={}),
    Case("no key", "GET", "/v1/runs", 401, headers={}, error_field="authorization"),
    Case("wrong key", "GET", "/v1/runs", 401, headers={"authorization": "Bearer nope"}),
    Case("x-api-key", "GET", "/v1/runs", 200, headers={"x-api-key": KEY}),
    Case("unknown route", "GET", "/v2/everything", 404, error_field="path"),
    Case("unsupported method", "DELETE", "/v1/runs", 405),
    Case(
        "put workflow",
        "PUT",
        "/v1/workflows/research-brief",
        200,
        body=WORKFLOW,
        headers={**AUTH, "content-type": "application/yaml"},
    ),
    Case(
        "invalid workflow",
        "PUT",
        "/v1/workflows/broken",
        422,
        body="name: broken\nnodes:\n  - {id: a, type: agent, agent: ghost}\n",
        headers={**AUTH, "content-type": "application/yaml"},
        error_field="nodes[0].agent",
    ),
    Case(
        "workflow of another name",
        "PUT",
        "/v1/workflows/other",
        422,
        body=WORKFLOW,
        headers={**AUTH, "content-type": "application/yaml"},
        error_field="name",
    ),
    Case(
        "retries past the queue's delivery limit",
        "PUT",
        "/v1/workflows/greedy",
        422,
        body="name: greedy\ntools: [tools.py]\nnodes:\n  - {id: a, type: tool, tool: word_count,"
        " args: {text: hi}, retry: {max_attempts: 8}}\n",
        headers={**AUTH, "content-type": "application/yaml"},
        error_field="nodes[0].retry.max_attempts",
    ),
    Case("get workflow", "GET", "/v1/workflows/research-brief", 200),
    Case("unknown workflow", "GET", "/v1/workflows/nothing", 404, error_field="workflow"),
    Case("malformed json", "POST", "/v1/runs", 400, body=b'{"workflow": ', error_field="body"),
    # hostile documents: refused at the door with a 4xx, the same on every entry point
    Case("deep json", "POST", "/v1/runs", 400, body=b"[" * 1000 + b"]" * 1000, error_field="body"),
    Case(
        "huge number",
        "POST",
        "/v1/runs",
        400,
        body=b'{"workflow": "research-brief", "input": {"subject": ' + b"9" * 4300 + b"}}",
        error_field="body",
    ),
    Case(
        "lone surrogate",
        "POST",
        "/v1/runs",
        400,
        body=b'{"workflow": "research-brief", "input": {"subject": "\\ud800"}}',
        error_field="body",
    ),
    Case(
        "yaml alias bomb",
        "PUT",
        "/v1/workflows/bomb",
        422,
        body=ALIAS_BOMB,
        headers={**AUTH, "content-type": "application/yaml"},
    ),
    Case(
        "recursive yaml alias",
        "PUT",
        "/v1/workflows/loop",
        422,
        body="name: loop\nnodes: &n [*n]\n",
        headers={**AUTH, "content-type": "application/yaml"},
    ),
    Case(
        "deep yaml",
        "PUT",
        "/v1/workflows/deep",
        422,
        body="name: deep\nnodes: " + "[" * 900 + "]" * 900 + "\n",
        headers={**AUTH, "content-type": "application/yaml"},
    ),
    Case(
        "huge yaml number",
        "PUT",
        "/v1/workflows/big",
        422,
        body="name: big\ndescription: x\nnodes: []\ntimeout: " + "9" * 4300 + "\n",
        headers={**AUTH, "content-type": "application/yaml"},
    ),
    Case("wrong type", "POST", "/v1/runs", 422, body={"workflow": 5}, error_field="workflow"),
    Case(
        "unknown field",
        "POST",
        "/v1/runs",
        422,
        body={"workflow": "research-brief", "colour": "red"},
        error_field="colour",
    ),
    Case(
        "not json",
        "POST",
        "/v1/runs",
        415,
        body="workflow=x",
        headers={**AUTH, "content-type": "application/x-www-form-urlencoded"},
    ),
    Case("run unknown workflow", "POST", "/v1/runs", 404, body={"workflow": "nope"}),
    Case(
        "missing input",
        "POST",
        "/v1/runs",
        422,
        body={"workflow": "research-brief", "input": {}},
        error_field="input.subject",
    ),
    Case(
        "oversized body",
        "POST",
        "/v1/runs",
        413,
        body={"workflow": "research-brief", "input": {"subject": "x" * (1 << 20)}},
        error_field="body",
    ),
    Case(
        "start run",
        "POST",
        "/v1/runs",
        202,
        body={"workflow": "research-brief", "input": {"subject": "edge AI"}},
    ),
    Case("list runs", "GET", "/v1/runs", 200, query={"limit": "5"}),
    Case("bad limit", "GET", "/v1/runs", 422, query={"limit": "zero"}, error_field="limit"),
    Case("bad cursor", "GET", "/v1/runs", 422, query={"cursor": "../x"}, error_field="cursor"),
    Case("unknown run", "GET", "/v1/runs/run_00000000000000000000000", 404),
    Case("cancel unknown run", "POST", "/v1/runs/run_00000000000000000000000/cancel", 404),
    Case(
        "signal unknown run",
        "POST",
        "/v1/runs/run_00000000000000000000000/signals/approve",
        404,
        body={"payload": {"ok": True}},
    ),
    Case(
        "put agent",
        "PUT",
        "/v1/agents/reviewer",
        200,
        body={"instructions": "Review briefs.", "max_steps": 3},
    ),
    Case("get agent", "GET", "/v1/agents/reviewer", 200),
    Case(
        "invalid agent",
        "PUT",
        "/v1/agents/bad",
        422,
        body={"instructions": "", "max_steps": 0},
        error_field="instructions",
    ),
    Case("unknown agent", "GET", "/v1/agents/ghost", 404),
    Case(
        "register http tool",
        "POST",
        "/v1/tools",
        201,
        body={
            "name": "metadata",
            "url": "http://169.254.169.254/latest/meta-data/{path}",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
    ),
    Case(
        "invalid tool",
        "POST",
        "/v1/tools",
        422,
        body={"name": "x", "url": "ftp://example.com/"},
        error_field="url",
    ),
    Case("list tools", "GET", "/v1/tools", 200),
    Case(
        "ssrf refused",
        "POST",
        "/v1/tools/metadata/test",
        422,
        body={"arguments": {"path": "iam"}},
        error_field="url",
    ),
    Case(
        "python tool test",
        "POST",
        "/v1/tools/word_count/test",
        200,
        body={"arguments": {"text": "one two three"}},
    ),
    Case(
        "python tool bad args",
        "POST",
        "/v1/tools/word_count/test",
        422,
        body={"arguments": {"text": 3}},
        error_field="text",
    ),
    Case("unknown tool", "POST", "/v1/tools/ghost/test", 404, body={}),
    Case(
        "cyclic plan",
        "POST",
        "/v1/collaborations",
        422,
        body={
            "team": "research-brief",
            "plan": {
                "subtasks": [
                    {"id": "a", "task": "A.", "capability": "write", "depends_on": ["b"]},
                    {"id": "b", "task": "B.", "capability": "write", "depends_on": ["a"]},
                ]
            },
        },
        error_field="subtasks[0].depends_on",
    ),
    Case(
        "plan needs a skill the team lacks",
        "POST",
        "/v1/collaborations",
        422,
        body={
            "team": "research-brief",
            "plan": {
                "subtasks": [
                    {"id": "a", "task": "A.", "capability": "sing"},
                ]
            },
        },
        error_field="subtasks[0].capability",
    ),
    Case(
        "malformed plan",
        "POST",
        "/v1/collaborations",
        422,
        body={"team": "research-brief", "plan": {"subtasks": [{"id": "1a", "task": "A."}]}},
        error_field="plan.subtasks.0.id",
    ),
    Case(
        "collaboration of an unknown team",
        "POST",
        "/v1/collaborations",
        404,
        body={
            "team": "nobody",
            "plan": {"subtasks": [{"id": "a", "task": "A.", "capability": "x"}]},
        },
    ),
    Case(
        "start collaboration",
        "POST",
        "/v1/collaborations",
        202,
        body={
            "team": "research-brief",
            "plan": {
                "subtasks": [
                    {"id": "outline", "task": "Outline it.", "capability": "plan"},
                    {
                        "id": "draft",
                        "task": "Draft it.",
                        "capability": "write",
                        "depends_on": ["outline"],
                    },
                ]
            },
        },
    ),
    Case("unknown collaboration", "GET", "/v1/collaborations/run_00000000000000000000000", 404),
    Case(
        "progress of an unknown collaboration",
        "GET",
        "/v1/collaborations/run_00000000000000000000000/progress",
        404,
        query={"cursor": "zz"},
    ),
]

RUN_ID = re.compile(r"run_[0-9a-f]{23}")
VOLATILE = {"created_at", "finished_at", "updated_at", "started_at", "correlation_id"}


def normalise(value: Any) -> Any:
    """Replace what legitimately differs between two deployments: ids and clock readings."""
    if isinstance(value, dict):
        return {k: ("<t>" if k in VOLATILE else normalise(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str):
        return RUN_ID.sub("<run>", value)
    return value


def settings_env(home: Path) -> dict[str, str]:
    return {
        "AGENTFN_HOME": str(home),
        "AGENTFN_STORAGE": (home / "store").as_uri(),
        "AGENTFN_QUEUE": f"sqlite://{home / 'queue.db'}",
        "AGENTFN_SECRETS": f"env://{home / '.env'}",
        "AGENTFN_PROJECT": str(EXAMPLE),
        "AGENTFN_TOOL_MODULES": "tools.py",
        "AGENTFN_API_KEY": KEY,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "agentfn-tests",
    }


def run_table(entry: EntryPoint) -> list[tuple[int, Any, dict[str, str]]]:
    replies = []
    for case in CASES:
        reply: Reply = entry.send(
            case.method, case.path, headers=case.headers, body=case.raw_body(), query=case.query
        )
        assert reply.headers.get("content-type", "").startswith("application/json"), case.name
        assert reply.headers.get("x-correlation-id"), case.name
        replies.append((reply.status, normalise(reply.json()), reply.headers))
    return replies


@pytest.fixture(scope="module")
def replies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[Any]]]:
    results: dict[str, list[Any]] = {}
    monkeypatch = pytest.MonkeyPatch()
    try:
        for name, make in (
            ("aws-lambda", lambda env: LambdaEntry()),
            ("gcp-functions-framework", gcp_entry),
            ("azure-functions", lambda env: AzureEntry()),
            ("local-serve", local_entry),
        ):
            env = settings_env(tmp_path_factory.mktemp(name))
            for k, v in env.items():
                monkeypatch.setenv(k, v)
            entry = make(env)
            try:
                results[name] = run_table(entry)
            finally:
                entry.close()
        yield results
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.name for c in CASES])
def test_every_entry_point_answers_the_same(replies: dict[str, list[Any]], index: int) -> None:
    case = CASES[index]
    seen = {name: (r[index][0], r[index][1]) for name, r in replies.items()}
    statuses = {name: status for name, (status, _) in seen.items()}
    assert set(statuses.values()) == {case.status}, statuses
    bodies = [body for _, body in seen.values()]
    assert all(b == bodies[0] for b in bodies), json.dumps(seen, indent=1)[:3000]
    if case.status >= 400:
        error = bodies[0]["error"]
        assert set(error) == {"code", "message", "field"} and error["message"]
        if case.error_field is not None:
            assert error["field"] == case.error_field, error


def test_405_names_the_allowed_methods(replies: dict[str, list[Any]]) -> None:
    index = next(i for i, c in enumerate(CASES) if c.status == 405)
    for name, r in replies.items():
        assert r[index][2].get("allow") == "GET, POST", name


def test_invalid_workflow_error_names_the_line(replies: dict[str, list[Any]]) -> None:
    index = next(i for i, c in enumerate(CASES) if c.name == "invalid workflow")
    message = replies["local-serve"][index][1]["error"]["message"]
    assert message.startswith("workflows/broken:3: nodes[0].agent: unknown agent 'ghost'")
