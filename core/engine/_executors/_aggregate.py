"""Aggregate nodes: combine candidate results into one, by a strategy.

``concatenate``, ``vote`` and ``best_score`` take one step (``<node>``); ``judge`` is an agent
conversation (``<node>@t``) whose final answer is the result. A score tool's result is
recorded per candidate, as an agent's tool calls are, so a step re-run after a crash never
scores a candidate twice. When the fold starts an aggregate is a join's business.
"""

from __future__ import annotations

import json
from typing import Any

from agentfn.agents import tool_result_text
from agentfn.engine._context import StepContext
from agentfn.engine._executors._agent import agent_turn
from agentfn.engine._executors._registry import executor
from agentfn.engine._executors._tool import as_args
from agentfn.errors import NotFound, StepFailed
from agentfn.expressions import compile_expression
from agentfn.runs import StepOutcome, key_part
from agentfn.tool_calls import calling
from agentfn.workflows import AggregateNode, render_args


@executor(AggregateNode)
def aggregate_step(sc: StepContext, node: AggregateNode) -> StepOutcome:
    if node.strategy == "judge":
        return _judge(sc, node)
    candidates = candidates_of(sc, node)
    summary: dict[str, Any] = {"strategy": node.strategy, "candidates": len(candidates)}
    if node.strategy == "concatenate":
        summary["result"] = node.separator.join(tool_result_text(c) for c in candidates)
    elif node.strategy == "vote":
        summary.update(vote(candidates))
    else:
        summary.update(_best_score(sc, node, candidates))
    return sc.complete(node.id, summary)


def candidates_of(sc: StepContext, node: AggregateNode) -> list[Any]:
    """``candidates`` evaluated, or the outputs of the incoming edges taken, in edge order."""
    if node.candidates is not None:
        value = compile_expression(node.candidates).evaluate(sc.names())
        if not isinstance(value, list | tuple):
            raise StepFailed(
                f"aggregate node {node.id!r}: candidates must give a list, "
                f"got {type(value).__name__}"
            )
        return list(value)
    arrived = sc.run.arrivals.get(node.id, {})
    sources = dict.fromkeys(sc.blueprint.incoming.get(node.id, []))
    return [sc.store.node_output(sc.run.id, src) for src in sources if arrived.get(src)]


def vote(candidates: list[Any]) -> dict[str, Any]:
    """The most frequent candidate (equal when their JSON is; text compared trimmed and
    case-folded); ties go to the one seen first. No candidates: no result."""
    counts: dict[str, int] = {}
    first: dict[str, Any] = {}
    for c in candidates:
        ballot = _ballot(c)
        counts[ballot] = counts.get(ballot, 0) + 1
        first.setdefault(ballot, c)
    ranked = sorted(counts, key=lambda b: -counts[b])  # stable: first seen wins a tie
    return {
        "result": first[ranked[0]] if ranked else None,
        "votes": [{"value": first[b], "count": counts[b]} for b in ranked],
    }


def _ballot(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(" ".join(value.split()).casefold())
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _best_score(sc: StepContext, node: AggregateNode, candidates: list[Any]) -> dict[str, Any]:
    names = sc.names()
    scores = [_score(sc, node, names, i, c) for i, c in enumerate(candidates)]
    best = max(range(len(scores)), key=lambda i: (scores[i], -i), default=None)
    return {
        "result": candidates[best] if best is not None else None,
        "scores": scores,
        "best": best,
    }


def _score(
    sc: StepContext, node: AggregateNode, names: dict[str, Any], index: int, candidate: Any
) -> float:
    """Candidate ``index``'s score: recorded once, so a re-run step reuses it."""
    assert node.score is not None
    key = f"runs/{sc.run.id}/calls/{key_part(str(sc.step))}/{index}.json"
    try:
        raw = sc.store.read_json(key)
    except NotFound:
        args = as_args(render_args(node.args, {**names, "candidate": candidate, "index": index}))
        with calling(sc.run.id, str(sc.step), index):
            raw = sc.store.record_once(key, sc.tools.get(node.score).invoke(args))
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise StepFailed(
            f"aggregate node {node.id!r}: score tool {node.score!r} gave "
            f"{type(raw).__name__} for candidate {index}, not a number"
        )
    return float(raw)


def _judge(sc: StepContext, node: AggregateNode) -> StepOutcome:
    assert node.judge is not None
    names: dict[str, Any] = {}
    count = 0
    if not sc.step.turn:  # later turns continue the judge's conversation
        candidates = candidates_of(sc, node)
        count = len(candidates)
        names = {**sc.names(), "candidates": candidates}
    outcome = agent_turn(sc, node.judge, node.prompt, names)
    if outcome.completes is None:
        return outcome
    if not count:  # a judge that took several turns: count from its first turn's prompt
        count = len(candidates_of(sc, node))
    summary = {"strategy": "judge", "candidates": count, "result": outcome.output}
    outcome.output = summary
    outcome.edges = sc.edges(node.id, summary)
    return outcome
