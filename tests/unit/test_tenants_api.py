"""Tenants, keys and roles over the real local runtime (SQLite store and queue, the API as every
entry point calls it):

- isolation: tenant B's key walks every route against tenant A's resources and gets 404, or
  its own (empty) data, never A's; B's writes under A's names leave A's records alone;
- the role matrix: every route and every role, denied exactly where the role lacks the route's
  permission (403, audited), allowed everywhere else;
- key lifecycle: created keys work, a rotated secret stops working and the new one works, a
  revoked or expired key gets 401; no listing shows a secret;
- jobs carry their tenant: a worker runs each job against its tenant's prefix only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from agentfn.api import REGISTRY, Request, Route
from agentfn.api_keys import ApiKeyCreated
from agentfn.errors import NotFound
from agentfn.events.cloudevents import job_of
from agentfn.functions.runtime import Runtime
from agentfn.roles import Role
from agentfn.settings import Settings
from tests.support.collaboration_team import TEAM, write_team

BOOTSTRAP = "bootstrap-key-0123456789"
PLAN = {"subtasks": [{"id": "intro", "task": "Write the intro.", "capability": "write"}]}
TOOL = {
    "name": "lookup",
    "description": "Look a word up.",
    "url": "https://dictionary.example/{word}",
    # required, and every test call leaves it out: the tool refuses before any network use
    "parameters": {
        "type": "object",
        "properties": {"word": {"type": "string"}},
        "required": ["word"],
    },
}
AGENT = {"instructions": "Help.", "model": "default"}


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    write_team(tmp_path / "project")  # its rule file is the deployment's
    (tmp_path / ".env").write_text(f"AGENTFN_API_KEY={BOOTSTRAP}\n")
    env = {
        "AGENTFN_PROJECT": str(tmp_path / "project"),
        "AGENTFN_SECRETS": f"env://{tmp_path / '.env'}",
    }
    return Runtime(Settings.from_env(env, home=tmp_path / "home"))


def call(
    rt: Runtime,
    key: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    query: dict[str, str] | None = None,
) -> tuple[int, Any]:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode() if body else b""
    headers = {"authorization": f"Bearer {key}", "content-type": content_type}
    reply = rt.api.handle(Request(method, path, headers=headers, query=query or {}, body=raw))
    if reply.headers.get("content-type") == "application/json":
        return reply.status, reply.json()
    return reply.status, reply.body.decode()


def admin_of(rt: Runtime, tenant: str) -> ApiKeyCreated:
    """The operator's path to a tenant's first key (``agentfn keys create``)."""
    return rt.keys.create(tenant, Role.tenant_admin, name=f"{tenant} admin", created_by="operator")


def work(rt: Runtime, jobs: int = 50) -> None:
    for _ in range(jobs):
        messages = rt.queue.receive(1, visibility_timeout=30)
        if not messages:
            return
        rt.engine.handle(messages[0])


def populate(rt: Runtime, key: str) -> dict[str, str]:
    """One of everything a tenant can own; returns the path parameters naming them."""
    text = TEAM
    assert (
        call(rt, key, "PUT", "/v1/workflows/team", text, content_type="application/yaml")[0] == 200
    )
    assert call(rt, key, "PUT", "/v1/agents/helper", AGENT)[0] == 200
    assert call(rt, key, "POST", "/v1/tools", TOOL)[0] == 201
    status, run = call(
        rt, key, "POST", "/v1/runs", {"workflow": "team", "input": {}, "thread": "support-1"}
    )
    assert status == 202, run
    status, collab = call(rt, key, "POST", "/v1/collaborations", {"team": "team", "plan": PLAN})
    assert status == 202, collab
    status, made = call(rt, key, "POST", "/v1/api-keys", {"name": "ci", "role": "viewer"})
    assert status == 201, made
    return {
        "run_id": run["id"],
        "collaboration_id": collab["id"],
        "key_id": made["id"],
        "thread_id": "support-1",
    }


# What B sees of A's world, route by route: "404", or "own" (B's own, empty or new, data).
# Every route must be here, so a new route cannot skip the isolation walk.
ISOLATION: dict[tuple[str, str], str] = {
    ("POST", "/v1/runs"): "404",  # A's workflow is not B's
    ("GET", "/v1/runs"): "own",
    ("GET", "/v1/runs/{run_id}"): "404",
    ("GET", "/v1/runs/{run_id}/diff/{other_id}"): "404",
    ("POST", "/v1/runs/{run_id}/cancel"): "404",
    ("POST", "/v1/runs/{run_id}/replay"): "404",
    ("POST", "/v1/runs/{run_id}/signals/{name}"): "404",
    ("GET", "/v1/threads/{thread_id}"): "404",
    ("DELETE", "/v1/threads/{thread_id}"): "404",
    ("POST", "/v1/collaborations"): "404",  # A's team is not B's
    ("GET", "/v1/collaborations/{collaboration_id}"): "404",
    ("GET", "/v1/collaborations/{collaboration_id}/agents"): "404",
    ("GET", "/v1/collaborations/{collaboration_id}/progress"): "404",
    ("GET", "/v1/collaborations/{collaboration_id}/events"): "404",
    ("GET", "/v1/agents/{name}"): "404",
    ("PUT", "/v1/agents/{name}"): "own",
    ("POST", "/v1/agents/{name}/runs"): "404",
    ("GET", "/v1/workflows"): "own",
    ("GET", "/v1/workflows/{name}"): "404",
    ("PUT", "/v1/workflows/{name}"): "own",
    ("POST", "/v1/tools"): "own",
    ("GET", "/v1/tools"): "own",
    ("POST", "/v1/tools/{name}/test"): "404",
    ("POST", "/v1/api-keys"): "own",
    ("GET", "/v1/api-keys"): "own",
    ("POST", "/v1/api-keys/{key_id}/rotate"): "404",
    ("DELETE", "/v1/api-keys/{key_id}"): "404",
    ("GET", "/v1/audit"): "own",
    ("GET", "/v1/usage"): "own",
    ("GET", "/v1/settings"): "own",
    ("PUT", "/v1/settings"): "own",
    ("GET", "/v1/metrics"): "own",
    ("GET", "/v1/costs"): "own",
    ("GET", "/v1/costs.csv"): "own",
}


def v1_routes() -> list[Route]:
    return [r for r in REGISTRY.routes() if not r.public]


def test_the_isolation_table_covers_every_route() -> None:
    assert {(r.method, r.path) for r in v1_routes()} == set(ISOLATION)


def request_for(route: Route, params: dict[str, str], team: str) -> tuple[str, Any, str]:
    """A path and a valid body for ``route``, naming A's resources."""
    names = {
        "/v1/agents/{name}": "helper",
        "/v1/agents/{name}/runs": "helper",
        "/v1/workflows/{name}": "team",
        "/v1/tools/{name}/test": "lookup",
        "/v1/runs/{run_id}/signals/{name}": "go",
    }
    values = {**params, "other_id": params["run_id"], "name": names.get(route.path, "")}
    path = route.path.format(**values)
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/v1/runs"): {"workflow": "team", "input": {}},
        ("POST", "/v1/runs/{run_id}/replay"): {},
        ("POST", "/v1/runs/{run_id}/signals/{name}"): {"payload": 1},
        ("POST", "/v1/collaborations"): {"team": "team", "plan": PLAN},
        ("PUT", "/v1/agents/{name}"): {"instructions": "B's own.", "model": "default"},
        ("PUT", "/v1/workflows/{name}"): team.replace("Write.", "B writes."),
        ("POST", "/v1/tools"): {**TOOL, "description": "B's own."},
        ("POST", "/v1/tools/{name}/test"): {"arguments": {}},
        ("POST", "/v1/api-keys"): {"name": "b-ci", "role": "developer"},
        ("POST", "/v1/agents/{name}/runs"): {"prompt": "hi", "models_from": "team"},
        ("PUT", "/v1/settings"): {"mask_pii": True},
    }
    ctype = "application/yaml" if route.path == "/v1/workflows/{name}" else "application/json"
    return path, bodies.get((route.method, route.path)), ctype


def test_tenant_b_walks_every_route_against_tenant_a_and_sees_nothing_of_it(
    runtime: Runtime,
) -> None:
    a, b = admin_of(runtime, "acme").key, admin_of(runtime, "bravo").key
    params = populate(runtime, a)
    work(runtime)
    team = TEAM
    before = {
        path: call(runtime, a, "GET", path)
        for path in (
            f"/v1/runs/{params['run_id']}",
            f"/v1/collaborations/{params['collaboration_id']}",
            f"/v1/threads/{params['thread_id']}",
            "/v1/agents/helper",
            "/v1/workflows/team",
            "/v1/tools",
            "/v1/api-keys",
            "/v1/settings",
        )
    }
    a_secrets = json.dumps(before)
    status, thread = before[f"/v1/threads/{params['thread_id']}"]
    assert status == 200 and thread["runs"] == [params["run_id"]], thread
    assert call(runtime, b, "GET", "/v1/workflows")[1]["items"] == []  # A's "team" is not B's
    assert call(runtime, a, "GET", "/v1/workflows")[1]["items"] == ["team"]

    # B's reads and actions on A's names first: B's own writes come after, or B would meet
    # its own agent, workflow and tool under those names
    walk = sorted(v1_routes(), key=lambda r: ISOLATION[(r.method, r.path)] != "404")
    for route in walk:
        path, body, ctype = request_for(route, params, team)
        status, reply = call(runtime, b, route.method, path, body, content_type=ctype)
        where = f"{route.method} {route.path}"
        if ISOLATION[(route.method, route.path)] == "404":
            assert status == 404, (where, status, reply)
            assert reply["error"]["code"] == "not_found", where
            continue
        assert status < 300, (where, status, reply)
        shown = json.dumps(reply)
        for value in params.values():  # none of A's ids reach B
            assert value not in shown, (where, value)
        assert "dictionary.example" not in shown or route.path == "/v1/tools", where

    # B's listings hold only B's own records
    assert call(runtime, b, "GET", "/v1/runs")[1]["items"] == []
    b_tools = call(runtime, b, "GET", "/v1/tools")[1]["items"]
    assert [t["description"] for t in b_tools] == ["B's own."]
    b_keys = call(runtime, b, "GET", "/v1/api-keys")[1]["items"]
    assert sorted(k["name"] for k in b_keys) == ["b-ci", "bravo admin"]
    # B's writes under A's names changed nothing of A's
    after = {path: call(runtime, a, "GET", path) for path in before}
    assert after == before
    assert "B writes" not in a_secrets and "B's own" not in json.dumps(after)
    # and every record of each tenant sits under its own prefix of the store
    every = runtime.blobs.list("").keys
    tenants = {k.split("/")[1] for k in every if k.startswith("tenants/")}
    assert tenants == {"acme", "bravo"}
    assert all(k.startswith(("tenants/", "api-keys/")) for k in every), every


# What each role may call, stated independently of the routes' own declarations.
def may(role: str, route: Route) -> bool:
    admin_only = ("/v1/api-keys", "/v1/audit", "/v1/usage", "/v1/settings", "/v1/costs")
    if route.path.startswith(admin_only):
        return role == "tenant_admin"
    if route.method == "GET":
        return True
    return role in ("developer", "tenant_admin")


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_every_route_is_allowed_or_denied_by_the_role_table(runtime: Runtime, role: str) -> None:
    admin = admin_of(runtime, "acme").key
    params = populate(runtime, admin)
    key = runtime.keys.create("acme", Role(role), name=role, created_by="operator")
    team = TEAM
    denied = []
    for route in v1_routes():
        path, body, ctype = request_for(route, params, team)
        status, reply = call(runtime, key.key, route.method, path, body, content_type=ctype)
        where = f"{route.method} {route.path}"
        assert status != 401, (where, reply)
        if may(role, route):
            assert status != 403, (where, reply)
        else:
            assert status == 403, (where, status, reply)
            assert reply["error"]["code"] == "forbidden", where
            assert role in reply["error"]["message"], where
            denied.append(where)
    audit = call(runtime, admin, "GET", "/v1/audit", query={"limit": "200"})[1]["items"]
    logged = [e for e in audit if e["action"] == "role.denied"]
    assert sorted(e["target"] for e in logged) == sorted(denied)
    assert all(e["actor"] == key.id and e["details"]["roles"] == [role] for e in logged)
    expected_denials = {"viewer": 21, "developer": 10, "tenant_admin": 0}[role]
    assert len(denied) == expected_denials


def test_a_rotated_key_stops_working_and_the_new_secret_works(runtime: Runtime) -> None:
    admin = admin_of(runtime, "acme").key
    status, made = call(runtime, admin, "POST", "/v1/api-keys", {"name": "ci", "role": "viewer"})
    assert status == 201 and made["key"].startswith(made["prefix"] + "_")
    assert call(runtime, made["key"], "GET", "/v1/runs")[0] == 200

    status, rotated = call(runtime, admin, "POST", f"/v1/api-keys/{made['id']}/rotate")
    assert status == 200 and rotated["id"] == made["id"] and rotated["key"] != made["key"]
    status, reply = call(runtime, made["key"], "GET", "/v1/runs")
    assert status == 401 and reply["error"]["message"] == "invalid API key"
    assert call(runtime, rotated["key"], "GET", "/v1/runs")[0] == 200

    listed = call(runtime, admin, "GET", "/v1/api-keys")[1]["items"]
    shown = json.dumps(listed)
    assert rotated["key"] not in shown and "hash" not in shown and "salt" not in shown
    assert {k["id"]: k["status"] for k in listed}[made["id"]] == "active"


def test_a_revoked_key_gets_401_and_stays_listed_as_revoked(runtime: Runtime) -> None:
    admin = admin_of(runtime, "acme").key
    made = call(runtime, admin, "POST", "/v1/api-keys", {"name": "ci", "role": "developer"})[1]
    status, revoked = call(runtime, admin, "DELETE", f"/v1/api-keys/{made['id']}")
    assert status == 200 and revoked["status"] == "revoked" and "key" not in revoked
    status, reply = call(runtime, made["key"], "GET", "/v1/runs")
    assert status == 401 and reply["error"]["message"] == f"API key {made['prefix']} is revoked"
    assert call(runtime, admin, "DELETE", f"/v1/api-keys/{made['id']}")[0] == 200  # idempotent
    status, reply = call(runtime, admin, "POST", f"/v1/api-keys/{made['id']}/rotate")
    assert status == 409, reply

    actions = [
        (e["action"], e["target"]) for e in call(runtime, admin, "GET", "/v1/audit")[1]["items"]
    ]
    assert actions[-1] == ("key.created", made["id"])  # oldest last
    assert actions.count(("key.revoked", made["id"])) == 2


def test_an_expired_key_gets_401(runtime: Runtime) -> None:
    admin = admin_of(runtime, "acme").key
    body = {"name": "short", "role": "viewer", "expires_at": time.time() + 0.3}
    made = call(runtime, admin, "POST", "/v1/api-keys", body)[1]
    assert call(runtime, made["key"], "GET", "/v1/runs")[0] == 200
    time.sleep(0.4)
    status, reply = call(runtime, made["key"], "GET", "/v1/runs")
    assert status == 401 and reply["error"]["message"].endswith("is expired")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "role": "owner"}, "role"),
        ({"name": "", "role": "viewer"}, "name"),
        ({"name": "x", "role": "viewer", "expires_at": 1.0}, "expires_at"),
        ({"name": "x", "role": "viewer", "tenant": "bravo"}, "tenant"),
    ],
)
def test_a_bad_key_request_is_refused_naming_the_field(
    runtime: Runtime, body: dict[str, Any], field: str
) -> None:
    status, reply = call(runtime, BOOTSTRAP, "POST", "/v1/api-keys", body)
    assert status == 422, reply
    assert reply["error"]["field"] == field, reply


def test_unknown_and_malformed_key_ids_are_404(runtime: Runtime) -> None:
    for key_id in ("0123456789ab", "not-an-id"):
        status, reply = call(runtime, BOOTSTRAP, "DELETE", f"/v1/api-keys/{key_id}")
        assert status == 404 and reply["error"]["field"] == "id", reply


def test_the_bootstrap_key_administers_tenant_default(runtime: Runtime) -> None:
    status, made = call(runtime, BOOTSTRAP, "POST", "/v1/api-keys", {"name": "d", "role": "viewer"})
    assert status == 201
    assert runtime.keys.authenticate(made["key"]).tenant == "default"
    entry = call(runtime, BOOTSTRAP, "GET", "/v1/audit")[1]["items"][0]
    assert (entry["actor"], entry["action"], entry["target"]) == (
        "bootstrap",
        "key.created",
        made["id"],
    )


def test_jobs_carry_their_tenant_and_run_against_its_prefix_only(runtime: Runtime) -> None:
    a = admin_of(runtime, "acme").key
    params = populate(runtime, a)
    messages = runtime.queue.receive(10, visibility_timeout=30)
    assert messages and {job_of(m.body)["tenant"] for m in messages} == {"acme"}
    for message in messages:
        runtime.queue.retry(message, delay=0)
    work(runtime)  # the default tenant's engine hands every job to acme's
    status, run = call(runtime, a, "GET", f"/v1/runs/{params['run_id']}")
    assert status == 200 and run["status"] == "completed", run
    with pytest.raises(NotFound):
        runtime.for_tenant("default").engine.store.get(params["run_id"])


@pytest.mark.parametrize(
    ("tenant", "reason"),
    [("Not A Tenant", "malformed job: tenant"), ("bravo", "NotFound: run")],
)
def test_a_job_naming_a_bad_or_foreign_tenant_is_dead_lettered(
    runtime: Runtime, tenant: str, reason: str
) -> None:
    a = admin_of(runtime, "acme").key
    run_id = populate(runtime, a)["run_id"]
    work(runtime)
    forged = {"run": run_id, "step": "unused@0", "cid": "x", "tenant": tenant}
    runtime.queue.send(forged)
    message = runtime.queue.receive(1, visibility_timeout=30)[0]
    assert runtime.engine.handle(message) == "dead"
    dead = runtime.queue.dead_letters()
    assert dead and dead[-1].reason.startswith(reason), dead


def test_quota_refusals_are_429_with_retry_after_and_audited(runtime: Runtime) -> None:
    from agentfn.quotas import Limits

    a = admin_of(runtime, "acme")
    populate(runtime, a.key)  # one run and one collaboration, both still queued
    runtime.for_tenant("acme").quotas.set_limits(Limits(concurrent_runs=2))
    request = Request(
        "POST",
        "/v1/runs",
        headers={"authorization": f"Bearer {a.key}", "content-type": "application/json"},
        body=json.dumps({"workflow": "team", "input": {}}).encode(),
    )
    reply = runtime.api.handle(request)
    assert reply.status == 429 and reply.headers["retry-after"] == "5", reply.body
    error = reply.json()["error"]
    assert error["code"] == "quota_exceeded" and "concurrent_runs quota of 2" in error["message"]
    work(runtime)  # both end, and give their slots back
    assert runtime.api.handle(request).status == 202
    entries = call(runtime, a.key, "GET", "/v1/audit")[1]["items"]
    hit = next(e for e in entries if e["action"] == "quota.exceeded")
    assert (hit["actor"], hit["target"]) == (a.id, "concurrent_runs")


def test_a_day_of_tokens_spent_fails_the_next_model_call_and_refuses_new_runs(
    runtime: Runtime,
) -> None:
    from agentfn.quotas import Limits

    a = admin_of(runtime, "acme").key
    runtime.for_tenant("acme").quotas.set_limits(Limits(tokens_per_day=1))
    text = TEAM
    assert (
        call(runtime, a, "PUT", "/v1/workflows/team", text, content_type="application/yaml")[0]
        == 200
    )
    status, run = call(runtime, a, "POST", "/v1/runs", {"workflow": "team", "input": {}})
    assert status == 202
    work(runtime)  # the first call is made (today is not spent yet) and counted
    assert call(runtime, a, "GET", f"/v1/runs/{run['id']}")[1]["status"] == "completed"
    assert runtime.for_tenant("acme").quotas.usage().tokens_today > 1
    status, refused = call(runtime, a, "POST", "/v1/runs", {"workflow": "team", "input": {}})
    assert status == 429 and "tokens_per_day" in refused["error"]["message"], refused
    # a run already going when the day's tokens ran out fails at its next model call
    runtime.for_tenant("acme").quotas.set_limits(Limits())
    status, late = call(runtime, a, "POST", "/v1/runs", {"workflow": "team", "input": {}})
    runtime.for_tenant("acme").quotas.set_limits(Limits(tokens_per_day=1))
    work(runtime)
    failed = call(runtime, a, "GET", f"/v1/runs/{late['id']}")[1]
    assert failed["status"] == "failed" and "tokens_per_day" in failed["error"]["message"]
