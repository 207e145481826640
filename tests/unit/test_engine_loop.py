"""Loop nodes: rounds of parts with their own step keys, stopped by ``until`` or the limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentfn.errors import BlueprintError
from agentfn.runs import RunStatus
from agentfn.workflows import load_blueprint
from tests.support.engine_harness import drain, ledger, make_engine, project, recorded

RETRY = "retry: {max_attempts: 3, backoff: {base_s: 0, max_s: 0, jitter: false}}"

REVIEW_RULES = """
model: scripted-test
rules:
  - agent: author
    match: "round (?P<n>\\\\d+)"
    reply: {content: "draft v{n}"}
  - agent: critic
    match: "draft v(?P<n>{approve_at})"
    reply: {content: "APPROVED v{n}"}
  - agent: critic
    reply: {content: "REVISE: say more"}
"""


def review_project(tmp_path: Path, *, approve_at: str, max_rounds: int) -> Path:
    wf = project(
        tmp_path,
        f"""
        agents:
          author: {{instructions: Write., model: default}}
          critic: {{instructions: Review., model: default}}
        nodes:
          - id: review
            type: loop
            max_rounds: {max_rounds}
            until: "'APPROVED' in current.critique"
            parts:
              - id: draft
                agent: author
                prompt: "Write round {{{{ round }}}} on {{{{ input.topic }}}}. Notes: {{{{ previous.critique if previous else 'none' }}}}"
              - id: critique
                agent: critic
                prompt: "Review {{{{ current.draft }}}}"
          - id: publish
            type: tool
            tool: record
            args: {{label: "{{{{ steps.review.output.last.draft }}}}"}}
        edges:
          - {{from: review, to: publish}}
        """,
    )
    # The body's agents join the header's.
    wf.write_text(wf.read_text().replace("\nagents:\n  author", "\n  author"))
    (wf.parent / "rules.yaml").write_text(REVIEW_RULES.replace("{approve_at}", approve_at))
    return wf


def run(tmp_path: Path, wf: Path, given: dict[str, Any]) -> Any:
    engine = make_engine(tmp_path)
    started = engine.start(load_blueprint(wf), given)
    return engine, drain(engine, started.id)


def test_the_peer_review_loop_stops_at_approval(tmp_path: Path) -> None:
    wf = review_project(tmp_path, approve_at="3", max_rounds=5)
    engine, done = run(tmp_path, wf, {"topic": "retries"})
    assert done.status is RunStatus.completed
    out = engine.store.node_output(done.id, "review")
    assert (out["rounds"], out["stopped_by"]) == (3, "until")
    assert out["last"] == {"draft": "draft v3", "critique": "APPROVED v3"}
    assert [r["critique"] for r in out["history"]] == ["REVISE: say more"] * 2 + ["APPROVED v3"]
    assert ledger(wf) == ["draft v3"]  # the node after the loop read its last draft
    steps = recorded(engine, done.id)
    for r in (1, 2, 3):  # every round's steps have their own keys
        assert {f"review#{r}.draft@0", f"review#{r}.critique@0", f"review#{r}~check"} <= steps
    assert not any(k.startswith("review#4") for k in steps)
    # The author saw the previous round's critique; the critic saw this round's draft.
    calls = {c.step: c for c in engine.prompts.entries(done.id)}
    assert "Notes: REVISE: say more" in calls["review#2.draft@0"].request.messages[-1].content
    assert "Notes: none" in calls["review#1.draft@0"].request.messages[-1].content
    assert "Review draft v2" in calls["review#2.critique@0"].request.messages[-1].content
    assert done.usage.prompt_tokens > 0 and done.steps_run == len(steps)


def test_the_peer_review_loop_stops_at_the_round_limit(tmp_path: Path) -> None:
    wf = review_project(tmp_path, approve_at="9", max_rounds=2)
    engine, done = run(tmp_path, wf, {"topic": "retries"})
    out = engine.store.node_output(done.id, "review")
    assert (out["rounds"], out["stopped_by"]) == (2, "max_rounds")
    assert out["last"]["critique"] == "REVISE: say more"
    assert ledger(wf) == ["draft v2"]


def test_a_round_that_fails_is_retried_under_its_own_key(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        f"""
        nodes:
          - id: grow
            type: loop
            max_rounds: 4
            until: "current.step == 'x3'"
            {RETRY}
            parts:
              - {{id: step, tool: flaky, args: {{label: "x{{{{ round }}}}"}}}}
        """,
    )
    engine, done = run(tmp_path, wf, {})
    assert done.status is RunStatus.completed
    assert ledger(wf) == ["fail:x1", "x1", "fail:x2", "x2", "fail:x3", "x3"]
    out = engine.store.node_output(done.id, "grow")
    assert out["rounds"] == 3 and [h["step"] for h in out["history"]] == ["x1", "x2", "x3"]
    records = {r.key: r for r in engine.store.steps(done.id)}
    assert records["grow#2.step"].attempt == 2


def test_a_redelivered_round_step_does_nothing_twice(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        """
        nodes:
          - id: tick
            type: loop
            max_rounds: 3
            parts:
              - {id: rec, tool: record, args: {label: "r{{ round }}"}}
        """,
    )
    engine = make_engine(tmp_path)
    started = engine.start(load_blueprint(wf), {})
    handled: list[Any] = []
    while True:
        messages = engine.queue.receive(1, visibility_timeout=engine.lease_s)
        if not messages:
            break
        [message] = messages
        engine.handle(message)
        handled.append(message)
        if len(handled) == 1:  # the same job delivered again, after it was acked
            assert engine.handle(message) == "duplicate"
    done = engine.store.get(started.id)
    assert done.status is RunStatus.completed
    assert ledger(wf) == ["r1", "r2", "r3"]
    assert engine.store.node_output(done.id, "tick")["stopped_by"] == "max_rounds"


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (
            "{id: l, type: loop, max_rounds: 2, parts: [{id: p, agent: echo, tool: record}]}",
            "nodes[0].parts[0]: a loop part needs exactly one of 'agent' or 'tool'",
        ),
        (
            "{id: l, type: loop, max_rounds: 2, parts: [{id: p, agent: nobody}]}",
            "nodes[0].parts[0].agent: unknown agent 'nobody'",
        ),
        (
            "{id: l, type: loop, max_rounds: 2, parts: [{id: p, tool: nothing}]}",
            "nodes[0].parts[0].tool: unknown tool 'nothing'",
        ),
        (
            "{id: l, type: loop, max_rounds: 2, parts: [{id: p, agent: echo}, {id: p, agent: echo}]}",
            "nodes[0].parts[1].id: duplicate part id 'p'",
        ),
        (
            "{id: l, type: loop, max_rounds: 2, until: 'score > 1', parts: [{id: p, agent: echo}]}",
            "nodes[0].until: unknown name 'score'",
        ),
        (
            "{id: l, type: loop, max_rounds: 2, parts: [{id: p, agent: echo, prompt: '{{ steps.l }}'}]}",
            "nodes[0].parts[0].prompt: steps.l: no node 'l' upstream",
        ),
        (
            "{id: l, type: loop, max_rounds: 101, parts: [{id: p, agent: echo}]}",
            "nodes[0].max_rounds: Input should be less than or equal to 100",
        ),
        (
            "{id: l, type: loop, parts: [{id: p, agent: echo}]}",
            "nodes[0].max_rounds: Field required",
        ),
        (
            "{id: l, type: loop, max_rounds: 2, parts: []}",
            "nodes[0].parts: List should have at least 1 item",
        ),
    ],
)
def test_bad_loops_are_refused_with_their_line(tmp_path: Path, node: str, message: str) -> None:
    wf = project(tmp_path, f"nodes:\n  - {node}\n")
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(wf)
    assert message in str(caught.value)
