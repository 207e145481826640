"""The collaboration routes over the real local runtime: start one from a stored team, watch it
by polling with a cursor, read every subtask and each agent's load, and get 4xx for bad plans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentfn.api import Request
from agentfn.functions.runtime import Runtime
from agentfn.settings import Settings
from tests.support.collaboration_team import write_team

KEY = "collab-key-0123456789"


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    project = tmp_path / "project"
    project.mkdir()
    team = write_team(project).read_text()
    (tmp_path / ".env").write_text(f"AGENTFN_API_KEY={KEY}\n")
    env = {"AGENTFN_PROJECT": str(project), "AGENTFN_SECRETS": f"env://{tmp_path / '.env'}"}
    rt = Runtime(Settings.from_env(env, home=tmp_path / "home"))
    reply = call(rt, "PUT", "/v1/workflows/team", team, "application/yaml")
    assert reply[0] == 200, reply
    return rt


def call(
    rt: Runtime,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
    query: dict[str, str] | None = None,
) -> tuple[int, Any]:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode() if body else b""
    headers = {"authorization": f"Bearer {KEY}", "content-type": content_type}
    reply = rt.api.handle(Request(method, path, headers=headers, query=query or {}, body=raw))
    return reply.status, reply.json()


def work(rt: Runtime, jobs: int) -> None:
    """Handle up to ``jobs`` jobs, one at a time, as a worker would."""
    for _ in range(jobs):
        messages = rt.engine.queue.receive(1, visibility_timeout=30)
        if not messages:
            return
        rt.engine.handle(messages[0])


PLAN = {
    "subtasks": [
        {"id": "intro", "task": "Write the intro.", "capability": "write"},
        {"id": "body", "task": "Write the body.", "capability": "write"},
        {"id": "review", "task": "Review both.", "capability": "review",
         "depends_on": ["intro", "body"]},
    ]
}  # fmt: skip


def test_a_collaboration_is_started_polled_with_a_cursor_and_read(runtime: Runtime) -> None:
    status, started = call(runtime, "POST", "/v1/collaborations", {"team": "team", "plan": PLAN})
    assert status == 202, started
    cid = started["id"]
    assert [s["status"] for s in started["subtasks"]] == ["queued", "queued", "waiting"]
    assert [s["agent"] for s in started["subtasks"]] == ["writer-a", "writer-b", "critic"]

    path = f"/v1/collaborations/{cid}/progress"
    status, first = call(runtime, "GET", path)
    assert status == 200 and len(first["changed"]) == 3 and first["done"] is False
    status, idle = call(runtime, "GET", path, query={"cursor": first["cursor"]})
    assert idle["changed"] == [] and idle["cursor"] == first["cursor"]

    work(runtime, 1)  # one of the two writers' subtasks
    _, step = call(runtime, "GET", path, query={"cursor": first["cursor"]})
    [(one, state)] = [(s["id"], s["status"]) for s in step["changed"]]
    assert one in ("intro", "body") and state == "completed"

    work(runtime, 10)
    _, last = call(runtime, "GET", path, query={"cursor": step["cursor"]})
    other = "body" if one == "intro" else "intro"
    assert [(s["id"], s["status"]) for s in last["changed"]] == [
        (other, "completed"),
        ("review", "completed"),
    ]
    assert last["done"] is True and last["status"] == "completed"

    status, view = call(runtime, "GET", f"/v1/collaborations/{cid}")
    assert status == 200 and view["status"] == "completed"
    assert view["progress"]["completed"] == 3
    assert set(view["output"]) == {"review"}
    assert view["output"]["review"].startswith("done: Review both.")
    for sub in view["subtasks"]:
        assert sub["attempts"] == 1 and sub["steps"] == 1 and sub["tokens"] > 0
        assert sub["started_at"] <= sub["finished_at"]

    status, agents = call(runtime, "GET", f"/v1/collaborations/{cid}/agents")
    assert status == 200
    loads = {a["agent"]: (a["assigned"], a["completed"], a["subtasks"]) for a in agents["items"]}
    assert loads == {
        "critic": (1, 1, ["review"]),
        "translator": (0, 0, []),  # idle, and listed
        "writer-a": (1, 1, ["intro"]),
        "writer-b": (1, 1, ["body"]),
    }
    status, run = call(runtime, "GET", f"/v1/runs/{cid}")  # a collaboration is a run
    assert status == 200 and run["nodes"]["review"] == "finished"


@pytest.mark.parametrize(
    ("plan", "field", "words"),
    [
        (
            {"subtasks": [
                {"id": "a", "task": "A.", "capability": "write", "depends_on": ["c"]},
                {"id": "b", "task": "B.", "capability": "write", "depends_on": ["a"]},
                {"id": "c", "task": "C.", "capability": "write", "depends_on": ["b"]},
            ]},
            "subtasks[0].depends_on",
            "a -> c -> b -> a",
        ),
        (
            {"subtasks": [{"id": "a", "task": "A.", "capability": "write",
                           "depends_on": ["ghost"]}]},
            "subtasks[0].depends_on[0]",
            "'ghost'",
        ),
        (
            {"subtasks": [{"id": "a", "task": "A.", "capability": "sing"}]},
            "subtasks[0].capability",
            "sing",
        ),
        ({"subtasks": []}, "plan.subtasks", "at least 1"),
    ],
)  # fmt: skip
def test_a_plan_that_cannot_run_is_a_422_naming_the_subtask_and_nothing_starts(
    runtime: Runtime, plan: dict[str, Any], field: str, words: str
) -> None:
    status, reply = call(runtime, "POST", "/v1/collaborations", {"team": "team", "plan": plan})
    assert status == 422, reply
    assert reply["error"]["field"] == field
    assert words in reply["error"]["message"]
    assert runtime.engine.store.list_runs()[0] == []
    assert runtime.engine.queue.receive(1, visibility_timeout=1) == []


def test_a_bad_cursor_and_a_run_that_is_no_collaboration_are_client_errors(
    runtime: Runtime,
) -> None:
    _, started = call(runtime, "POST", "/v1/collaborations", {"team": "team", "plan": PLAN})
    path = f"/v1/collaborations/{started['id']}/progress"
    for cursor in ("not-base64!", "eNoDAAAAAAE"):  # garbage; a valid cursor of no subtasks
        status, reply = call(runtime, "GET", path, query={"cursor": cursor})
        assert (status, reply["error"]["field"]) == (422, "cursor"), reply
    status, run = call(runtime, "POST", "/v1/runs", {"workflow": "team"})
    assert status == 202
    status, reply = call(runtime, "GET", f"/v1/collaborations/{run['id']}")
    assert status == 404 and "not a collaboration" in reply["error"]["message"]
    status, reply = call(runtime, "GET", f"/v1/collaborations/{run['id']}/agents")
    assert status == 404


PLANNER_TEAM = """\
name: planned
models:
  default: {provider: scripted, rules: planner-rules.yaml}
agents:
  lead: {instructions: Plan., capabilities: [plan]}
  writer: {instructions: Write., capabilities: [write]}
nodes:
  - {id: unused, type: agent, agent: writer}
"""
PLANNER_RULES = """\
rules:
  - agent: lead
    reply:
      content: '{"subtasks": [{"id": "one", "task": "First.", "capability": "write"},
        {"id": "two", "task": "Second.", "capability": "write", "depends_on": ["one"]}]}'
default: {content: "done: {last_user}"}
"""


def test_a_collaboration_from_a_task_is_planned_by_the_teams_planner(
    runtime: Runtime, tmp_path: Path
) -> None:
    (tmp_path / "project" / "planner-rules.yaml").write_text(PLANNER_RULES)
    assert call(runtime, "PUT", "/v1/workflows/planned", PLANNER_TEAM, "application/yaml")[0] == 200
    body = {"team": "planned", "task": {"task": "Write two parts."}}
    status, started = call(runtime, "POST", "/v1/collaborations", body)
    assert status == 202, started
    assert [s["id"] for s in started["subtasks"]] == ["one", "two"]
    assert started["planner"]["agent"] == "lead" and started["planner"]["tokens"] > 0
    work(runtime, 10)
    _, view = call(runtime, "GET", f"/v1/collaborations/{started['id']}")
    assert view["status"] == "completed" and view["output"]["two"].startswith("done: Second.")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"team": "team", "plan": PLAN, "task": {"task": "x"}}, "body", "exactly one of"),
        ({"team": "team"}, "body", "exactly one of"),
        ({"team": "team", "task": {"task": "x"}}, "task.planner", "no agent with capability"),
        ({"team": "team", "task": {"task": ""}}, "task.task", "at least 1 character"),
    ],
)
def test_a_task_that_cannot_be_planned_is_a_422(
    runtime: Runtime, body: dict[str, Any], field: str, words: str
) -> None:
    status, reply = call(runtime, "POST", "/v1/collaborations", body)
    assert status == 422, reply
    assert reply["error"]["field"] == field and words in reply["error"]["message"]
    assert runtime.engine.queue.receive(10, visibility_timeout=1) == []  # nothing started
