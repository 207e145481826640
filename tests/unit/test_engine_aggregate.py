"""Aggregate nodes: concatenate, vote, judge and best score, waiting like a join."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentfn.errors import BlueprintError
from agentfn.runs import RunStatus
from agentfn.workflows import load_blueprint
from tests.support.engine_harness import drain, ledger, make_engine, project

JUDGE_RULES = """
model: scripted-test
rules:
  - agent: judge
    match: "answers:.*(?P<pick>\\\\bBETA\\\\b)"
    reply: {content: "merged around {pick}"}
default:
  content: "echo: {last_user}"
"""


def run(tmp_path: Path, body: str, given: dict[str, Any] | None = None) -> Any:
    wf = project(tmp_path, body)
    (wf.parent / "rules.yaml").write_text(JUDGE_RULES)
    text = wf.read_text().replace("\nagents:\n", "\nagents:\n  judge: {instructions: Judge.}\n", 1)
    wf.write_text(text)
    engine = make_engine(tmp_path)
    started = engine.start(load_blueprint(wf), given or {})
    done = drain(engine, started.id)
    return wf, engine, done


THREE = """
nodes:
  - {id: a, type: tool, tool: record, args: {label: alpha}}
  - {id: b, type: tool, tool: record, args: {label: beta}}
  - {id: c, type: tool, tool: record, args: {label: gamma}}
  - {id: gate, type: condition, expression: "input.with_c"}
  - {id: c2, type: tool, tool: record, args: {label: late}}
  - id: all
    type: aggregate
    strategy: %s
edges:
  - {from: a, to: all}
  - {from: b, to: all}
  - {from: gate, to: c2, when: "output"}
  - {from: c2, to: all}
"""


def test_concatenate_joins_the_taken_incoming_outputs_in_edge_order(tmp_path: Path) -> None:
    _, engine, done = run(tmp_path, THREE % "concatenate\n    separator: ' | '", {"with_c": True})
    out = engine.store.node_output(done.id, "all")
    assert out == {"strategy": "concatenate", "candidates": 3, "result": "ALPHA | BETA | LATE"}


def test_an_aggregate_waits_for_skipped_edges_and_combines_what_was_taken(
    tmp_path: Path,
) -> None:
    _, engine, done = run(tmp_path, THREE % "concatenate", {"with_c": False})
    assert done.status is RunStatus.completed and "c2" in done.skipped
    assert engine.store.node_output(done.id, "all")["result"] == "ALPHA\n\nBETA"


@pytest.mark.parametrize(
    ("ballots", "result", "votes"),
    [
        (["yes", "No ", "no", "yes", " NO"], "No ", [("No ", 3), ("yes", 2)]),
        (["b", "a", "a", "b"], "b", [("b", 2), ("a", 2)]),  # a tie: the first seen wins
        ([{"x": 1}, {"x": 2}, {"x": 1}], {"x": 1}, [({"x": 1}, 2), ({"x": 2}, 1)]),
        ([], None, []),
    ],
)
def test_vote_picks_the_majority(
    tmp_path: Path, ballots: list[Any], result: Any, votes: list[tuple[Any, int]]
) -> None:
    _, engine, done = run(
        tmp_path,
        """
        nodes:
          - {id: v, type: aggregate, strategy: vote, candidates: "input.ballots"}
        """,
        {"ballots": ballots},
    )
    out = engine.store.node_output(done.id, "v")
    assert out["result"] == result and out["candidates"] == len(ballots)
    assert [(v["value"], v["count"]) for v in out["votes"]] == votes


def test_a_judge_agent_merges_the_candidates(tmp_path: Path) -> None:
    _, engine, done = run(
        tmp_path,
        """
        nodes:
          - {id: a, type: agent, agent: echo, prompt: ALPHA}
          - {id: b, type: agent, agent: echo, prompt: BETA}
          - id: pick
            type: aggregate
            strategy: judge
            judge: judge
            prompt: "Pick one. answers: {{ candidates }}"
        edges:
          - {from: a, to: pick}
          - {from: b, to: pick}
        """,
    )
    out = engine.store.node_output(done.id, "pick")
    assert out == {"strategy": "judge", "candidates": 2, "result": "merged around BETA"}
    [call] = [c for c in engine.prompts.entries(done.id) if c.step == "pick@0"]
    assert call.request.messages[-1].content == 'Pick one. answers: ["echo: ALPHA", "echo: BETA"]'
    assert done.usage.prompt_tokens > 0


def test_best_score_keeps_the_highest_scoring_candidate(tmp_path: Path) -> None:
    wf, engine, done = run(
        tmp_path,
        """
        nodes:
          - id: best
            type: aggregate
            strategy: best_score
            candidates: "input.drafts"
            score: length
            args: {text: "{{ candidate }}"}
        """,
        {"drafts": ["short", "the longest", "also long!!"]},
    )
    out = engine.store.node_output(done.id, "best")
    assert out["result"] == "the longest"  # 11 characters, tied with the third: first wins
    assert out["scores"] == [5.0, 11.0, 11.0] and out["best"] == 1
    assert ledger(wf) == ["score:short", "score:the longest", "score:also long!!"]


def test_a_score_that_is_not_a_number_fails_the_step(tmp_path: Path) -> None:
    _, _, done = run(
        tmp_path,
        """
        nodes:
          - id: best
            type: aggregate
            strategy: best_score
            candidates: "input.drafts"
            score: verdict
            args: {text: "{{ candidate }}"}
        """,
        {"drafts": ["x"]},
    )
    assert done.status is RunStatus.failed and done.error is not None
    assert "score tool 'verdict' gave str for candidate 0, not a number" in done.error.message


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (
            "{id: g, type: aggregate, strategy: judge, candidates: '[1]'}",
            "nodes[0].strategy: strategy 'judge' needs 'judge'",
        ),
        (
            "{id: g, type: aggregate, strategy: vote, candidates: '[1]', score: length}",
            "nodes[0].score: 'score' is only for strategy 'best_score'",
        ),
        (
            "{id: g, type: aggregate, strategy: vote}",
            "nodes[0]: an aggregate node needs 'candidates' or incoming edges",
        ),
        (
            "{id: g, type: aggregate, strategy: judge, judge: nobody, candidates: '[1]'}",
            "nodes[0].judge: unknown agent 'nobody'",
        ),
        (
            "{id: g, type: aggregate, strategy: best_score, score: nothing, candidates: '[1]'}",
            "nodes[0].score: unknown tool 'nothing'",
        ),
        (
            "{id: g, type: aggregate, strategy: judge, judge: echo, candidates: '[1]', prompt: '{{ item }}'}",
            "nodes[0].prompt: unknown name 'item'",
        ),
        (
            "{id: g, type: aggregate, strategy: majority, candidates: '[1]'}",
            "nodes[0].strategy: Input should be 'concatenate', 'vote', 'judge' or 'best_score'",
        ),
    ],
)
def test_bad_aggregates_are_refused_with_their_line(
    tmp_path: Path, node: str, message: str
) -> None:
    wf = project(tmp_path, f"nodes:\n  - {node}\n")
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(wf)
    assert message in str(caught.value)
