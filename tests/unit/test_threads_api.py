"""Threads over the API, on the real local runtime: runs continue a thread
(``POST /v1/runs``, ``POST /v1/agents/{name}/runs``), ``GET /v1/threads/{id}`` shows it and
``DELETE`` removes it with the runs that held its messages; a thread past its TTL is gone
from every route; bad ids and TTLs get 4xx with the field named."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from agentfn.functions.runtime import Runtime
from agentfn.settings import Settings
from tests.support.collaboration_team import TEAM, write_team
from tests.unit.test_tenants_api import admin_of, call, work


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    write_team(tmp_path / "project")
    env = {"AGENTFN_PROJECT": str(tmp_path / "project")}
    return Runtime(Settings.from_env(env, home=tmp_path / "home"))


@pytest.fixture
def key(runtime: Runtime) -> str:
    key = admin_of(runtime, "acme").key
    status, _ = call(
        runtime, key, "PUT", "/v1/workflows/team", TEAM, content_type="application/yaml"
    )
    assert status == 200
    return key


def start(runtime: Runtime, key: str, **body: Any) -> dict[str, Any]:
    status, run = call(runtime, key, "POST", "/v1/runs", {"workflow": "team", **body})
    assert status == 202, run
    return run  # type: ignore[no-any-return]


def test_runs_continue_a_thread_that_get_shows_and_delete_removes(
    runtime: Runtime, key: str
) -> None:
    first = start(runtime, key, thread="support-7")
    assert first["thread"] == "support-7"
    work(runtime)
    assert call(runtime, key, "PUT", "/v1/agents/helper", {"instructions": "Help."})[0] == 200
    status, second = call(
        runtime,
        key,
        "POST",
        "/v1/agents/helper/runs",
        {"prompt": "And then?", "models_from": "team", "thread": "support-7"},
    )
    assert status == 202, second
    work(runtime)

    status, thread = call(runtime, key, "GET", "/v1/threads/support-7")
    assert status == 200, thread
    assert thread["runs"] == [first["id"], second["id"]]
    assert [m["role"] for m in thread["messages"]] == ["user", "assistant"] * 2
    assert thread["messages"][-2:] == [
        {
            "role": "user",
            "content": "And then?",
            "tool_calls": [],
            "tool_call_id": None,
            "name": None,
        },
        {
            "role": "assistant",
            "content": "done: And then?",
            "tool_calls": [],
            "tool_call_id": None,
            "name": "helper",
        },
    ]
    assert thread["expires_at"] is None
    assert call(runtime, key, "GET", f"/v1/runs/{first['id']}")[1]["thread"] == "support-7"

    status, deleted = call(runtime, key, "DELETE", "/v1/threads/support-7")
    assert status == 200, deleted
    assert sorted(deleted["runs"]) == sorted([first["id"], second["id"]])
    for path in ("/v1/threads/support-7", f"/v1/runs/{first['id']}", f"/v1/runs/{second['id']}"):
        status, reply = call(runtime, key, "GET", path)
        assert status == 404 and reply["error"]["code"] == "not_found", path
    assert call(runtime, key, "GET", "/v1/runs")[1]["items"] == []
    assert call(runtime, key, "DELETE", "/v1/threads/support-7")[0] == 404


def test_a_thread_past_its_ttl_is_gone_from_every_route(runtime: Runtime, key: str) -> None:
    run = start(runtime, key, thread="brief", thread_ttl_s=1)
    work(runtime)
    status, thread = call(runtime, key, "GET", "/v1/threads/brief")
    assert status == 200 and thread["ttl_s"] == 1 and thread["expires_at"] is not None
    time.sleep(1.2)
    # the listing first, then the run, then the thread: whichever is read first finds it gone
    assert call(runtime, key, "GET", "/v1/runs")[1]["items"] == []
    for path in (f"/v1/runs/{run['id']}", "/v1/threads/brief"):
        assert call(runtime, key, "GET", path)[0] == 404, path


def test_a_run_on_an_expired_thread_is_gone_when_read_first(runtime: Runtime, key: str) -> None:
    run = start(runtime, key, thread="brief", thread_ttl_s=1)
    work(runtime)
    time.sleep(1.2)
    status, reply = call(runtime, key, "GET", f"/v1/runs/{run['id']}")
    assert status == 404 and reply["error"]["code"] == "not_found", reply
    assert call(runtime, key, "POST", f"/v1/runs/{run['id']}/replay", {})[0] == 404
    assert call(runtime, key, "GET", "/v1/threads/brief")[0] == 404


def test_a_thread_with_a_run_going_cannot_be_deleted(runtime: Runtime, key: str) -> None:
    start(runtime, key, thread="busy")  # no worker: it stays queued
    status, reply = call(runtime, key, "DELETE", "/v1/threads/busy")
    assert status == 409 and reply["error"]["field"] == "thread", reply
    assert "queued" in reply["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"thread": "../etc"}, "thread"),
        ({"thread": "x" * 129}, "thread"),
        ({"thread": 7}, "thread"),
        ({"thread_ttl_s": 60}, "thread_ttl_s"),
        ({"thread": "ok", "thread_ttl_s": 0}, "thread_ttl_s"),
    ],
)
def test_bad_threads_are_refused_with_the_field(
    runtime: Runtime, key: str, body: dict[str, Any], field: str
) -> None:
    status, reply = call(runtime, key, "POST", "/v1/runs", {"workflow": "team", **body})
    assert status == 422, reply
    assert reply["error"]["field"] == field, reply
    assert call(runtime, key, "GET", "/v1/runs")[1]["items"] == []  # nothing started


def test_a_malformed_thread_id_in_the_path_is_a_422(runtime: Runtime, key: str) -> None:
    status, reply = call(runtime, key, "GET", "/v1/threads/-dash-first")
    assert status == 422 and reply["error"]["field"] == "thread", reply
