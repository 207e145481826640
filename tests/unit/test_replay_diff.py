"""Replays: without changes a replay of a scripted run is served from the prompt log and is the
run exactly; with other instructions, temperature or model the models are called again and the
diff shows what changed, step by step; over the API and with bad changes refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentfn.api import Request
from agentfn.errors import ValidationFailed
from agentfn.functions.runtime import Runtime
from agentfn.replay import ReplayChanges, diff_runs
from agentfn.roles import Role
from agentfn.settings import Settings
from agentfn.workflows import load_blueprint
from tests.support.engine_harness import HEADER, RULES, TOOLS, drain, make_engine, project

FLOW = """
nodes:
  - {id: ask, type: agent, agent: helper, prompt: "label alpha"}
  - {id: again, type: agent, agent: echo, prompt: "hello"}
edges:
  - {from: ask, to: again}
"""


def test_a_replay_without_changes_reproduces_the_run_from_its_log(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    first = drain(engine, engine.start(load_blueprint(project(tmp_path, FLOW)), {}).id)
    again = drain(engine, engine.replay(first.id).id)
    diff = diff_runs(engine.store, first.id, again.id)
    assert diff.same_output and all(n.same for n in diff.nodes)
    assert [s.key for s in diff.steps] == ["again@0", "ask@0", "ask@1"]
    assert all(s.a and s.b and s.a.status == s.b.status == "done" for s in diff.steps)
    served = list(engine.prompts.entries(again.id))
    assert served and all(p.replayed_from == first.id for p in served)
    assert [p.reply for p in served] == [p.reply for p in engine.prompts.entries(first.id)]
    assert (diff.b.tokens, diff.b.cost_usd) == (0, 0.0)  # served from the log: free


def test_other_instructions_call_the_models_again_and_the_diff_shows_the_cost(
    tmp_path: Path,
) -> None:
    engine = make_engine(tmp_path)
    first = drain(engine, engine.start(load_blueprint(project(tmp_path, FLOW)), {}).id)
    longer = "Repeat the prompt, " + "carefully " * 40
    changes = ReplayChanges(instructions={"echo": longer}, temperature=0.5)
    again = drain(engine, engine.replay(first.id, changes=changes).id)
    assert all(p.replayed_from is None for p in engine.prompts.entries(again.id))
    diff = diff_runs(engine.store, first.id, again.id)
    assert diff.same_output  # echo still echoes: the scripted model does not read instructions
    by_key = {s.key: s for s in diff.steps}
    assert by_key["again@0"].b.tokens > by_key["again@0"].a.tokens  # type: ignore[union-attr]
    assert by_key["ask@0"].b.tokens == by_key["ask@0"].a.tokens  # type: ignore[union-attr]
    assert diff.b.cost_usd > diff.a.cost_usd
    snapshot = engine.store.load_blueprint(engine.store.get(again.id).blueprint_key).blueprint
    assert snapshot.agents["echo"].instructions == longer
    assert {a.temperature for a in snapshot.agents.values()} == {0.5}


def test_a_change_naming_an_agent_the_blueprint_lacks_is_refused(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    first = drain(engine, engine.start(load_blueprint(project(tmp_path, FLOW)), {}).id)
    with pytest.raises(ValidationFailed) as refused:
        engine.replay(first.id, changes=ReplayChanges(instructions={"ghost": "Boo."}))
    assert refused.value.field == "instructions.ghost"


def test_replay_with_changes_and_the_diff_over_the_api(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "tools.py").write_text(TOOLS)
    (folder / "rules.yaml").write_text(RULES)
    rt = Runtime(Settings.from_env({"AGENTFN_PROJECT": str(folder)}, home=tmp_path / "home"))
    key = rt.keys.create("acme", Role.developer, name="d", created_by="t").key
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}

    def call(
        method: str, path: str, body: object = None, ctype: str = "application/json"
    ) -> tuple[int, dict[str, object]]:
        raw = (
            body.encode()
            if isinstance(body, str)
            else json.dumps(body).encode()
            if body is not None
            else b""
        )
        reply = rt.api.handle(
            Request(method, path, headers={**headers, "content-type": ctype}, body=raw)
        )
        return reply.status, reply.json()

    def work() -> None:
        while messages := rt.queue.receive(1, visibility_timeout=30):
            rt.engine.handle(messages[0])

    assert (
        call("PUT", "/v1/workflows/wf", "name: wf\n" + HEADER + FLOW, "application/yaml")[0] == 200
    )
    _, run = call("POST", "/v1/runs", {"workflow": "wf"})
    work()
    status, replay = call(
        "POST",
        f"/v1/runs/{run['id']}/replay",
        {"instructions": {"echo": "Say it back, word for word, twice over."}},
    )
    assert status == 202, replay
    work()
    status, diff = call("GET", f"/v1/runs/{run['id']}/diff/{replay['id']}")
    assert status == 200 and diff["same_output"] is True
    assert diff["b"]["tokens"] > diff["a"]["tokens"]
    status, bad = call("POST", f"/v1/runs/{run['id']}/replay", {"temperature": 5})
    assert status == 422 and bad["error"]["field"] == "temperature"
    status, bad = call("POST", f"/v1/runs/{run['id']}/replay", {"instructions": {"ghost": "x"}})
    assert status == 422 and bad["error"]["field"] == "instructions.ghost"
    assert call("GET", f"/v1/runs/{run['id']}/diff/run_nope")[0] == 404
