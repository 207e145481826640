"""Loop nodes: a round of parts in order, then a check that starts the next round or ends.

Steps of round ``r``: each part (``<node>#r.<part>``, agent turns ``@t``, or a tool), then
the check (``<node>#r~check``), which evaluates ``until``. A check that goes on stores the
history through round ``r`` as the unit ``<node>#r`` (one read for every later part) and
continues with round ``r + 1``'s first part; the last check completes the node. Every
round's steps have their own keys, so retries, crash repair and replay see each round
apart.
"""

from __future__ import annotations

from typing import Any

from agentfn.engine._context import StepContext
from agentfn.engine._executors._agent import agent_turn
from agentfn.engine._executors._registry import executor
from agentfn.engine._executors._tool import invoke_tool
from agentfn.engine._fold import loop_part_step
from agentfn.errors import StepFailed
from agentfn.expressions import compile_expression
from agentfn.runs import StepOutcome
from agentfn.steps import check_key
from agentfn.workflows import LoopNode


@executor(LoopNode)
def loop_step(sc: StepContext, node: LoopNode) -> StepOutcome:
    round_ = sc.step.round
    if round_ is None or not 1 <= round_ <= node.max_rounds:
        raise StepFailed(f"loop node {node.id!r}: step {sc.step} names no round of the loop")
    if sc.step.phase == "check":
        return _check(sc, node, round_)
    index = next((i for i, p in enumerate(node.parts) if p.id == sc.step.part), None)
    if index is None:
        raise StepFailed(f"loop node {node.id!r}: no part {sc.step.part!r}")
    return _part(sc, node, round_, index)


def _part(sc: StepContext, node: LoopNode, round_: int, index: int) -> StepOutcome:
    part = node.parts[index]
    first_turn = not sc.step.turn  # later turns continue the conversation: no prompt
    names = _names(sc, node, round_, index) if first_turn else {}
    if part.agent is not None:
        outcome = agent_turn(sc, part.agent, part.prompt, names)
        if outcome.completes is None:
            return outcome
    else:
        assert part.tool is not None
        outcome = sc.complete(sc.step.unit, invoke_tool(sc, part.tool, part.args, names))
    last = index + 1 == len(node.parts)
    outcome.continue_with = [
        check_key(node.id, round_) if last else loop_part_step(node, round_, index + 1)
    ]
    return outcome


def _check(sc: StepContext, node: LoopNode, round_: int) -> StepOutcome:
    history = _history(sc, node, round_)
    current = _current(sc, node, round_, len(node.parts))
    done = False
    if node.until is not None:
        names = _scope(sc, round_, current, history)
        done = bool(compile_expression(node.until).evaluate(names))
    history = [*history, current]
    if done or round_ == node.max_rounds:
        output = {
            "rounds": round_,
            "stopped_by": "until" if done else "max_rounds",
            "last": current,
            "history": history,
        }
        return sc.complete(node.id, output)
    return StepOutcome(
        output=history,
        completes=f"{node.id}#{round_}",
        continue_with=[loop_part_step(node, round_ + 1, 0)],
    )


def _names(sc: StepContext, node: LoopNode, round_: int, index: int) -> dict[str, Any]:
    current = _current(sc, node, round_, index)
    return _scope(sc, round_, current, _history(sc, node, round_))


def _scope(
    sc: StepContext, round_: int, current: dict[str, Any], history: list[Any]
) -> dict[str, Any]:
    return {
        **sc.names(),
        "round": round_,
        "current": current,
        "previous": history[-1] if history else None,
        "history": history,
    }


def _history(sc: StepContext, node: LoopNode, round_: int) -> list[Any]:
    """Every round before ``round_``: what the previous round's check stored."""
    if round_ == 1:
        return []
    value = sc.store.node_output(sc.run.id, f"{node.id}#{round_ - 1}")
    return list(value) if isinstance(value, list) else []


def _current(sc: StepContext, node: LoopNode, round_: int, upto: int) -> dict[str, Any]:
    """This round's first ``upto`` parts, by id."""
    return {
        p.id: sc.store.node_output(sc.run.id, f"{node.id}#{round_}.{p.id}")
        for p in node.parts[:upto]
    }
