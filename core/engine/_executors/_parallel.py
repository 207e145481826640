"""Parallel nodes: dispatch one job per item, run each item's body, gather in order.

Three steps per node: the dispatch (``<node>``) evaluates ``for_each`` and fans out; each
item (``<node>[i]``, agent or tool body) completes one item; the gather (``<node>~gather``,
added by the fold once every item is done) collects the items' outputs as the node's.
"""

from __future__ import annotations

from typing import Any

from agentfn.engine._context import StepContext
from agentfn.engine._executors._agent import agent_turn
from agentfn.engine._executors._registry import executor
from agentfn.engine._executors._tool import invoke_tool
from agentfn.errors import StepFailed
from agentfn.expressions import compile_expression
from agentfn.runs import StepOutcome
from agentfn.steps import StepKey, item_key
from agentfn.workflows import ParallelNode


@executor(ParallelNode)
def parallel_step(sc: StepContext, node: ParallelNode) -> StepOutcome:
    if sc.step.phase == "gather":
        return _gather(sc, node)
    if sc.step.item is None:
        return _dispatch(sc, node)
    return _item(sc, node, sc.step.item)


def _dispatch(sc: StepContext, node: ParallelNode) -> StepOutcome:
    items = compile_expression(node.for_each).evaluate(sc.names())
    if not isinstance(items, list | tuple):
        raise StepFailed(
            f"parallel node {node.id!r}: for_each must give a list, got {type(items).__name__}"
        )
    if len(items) > node.max_items:
        raise StepFailed(
            f"parallel node {node.id!r}: {len(items)} items exceed max_items={node.max_items}"
        )
    agent = node.agent is not None
    keys = [item_key(node.id, i, agent=agent) for i in range(len(items))]
    return StepOutcome(
        output={"items": list(items)},
        fan_out=len(items),
        continue_with=keys or [str(StepKey(node.id, phase="gather"))],
    )


def _item(sc: StepContext, node: ParallelNode, index: int) -> StepOutcome:
    dispatch = sc.store.get_step(sc.run.id, node.id)
    if dispatch is None or dispatch[0].outcome is None:
        raise StepFailed(f"parallel node {node.id!r}: item {index} has no dispatch record")
    item = dispatch[0].outcome.output["items"][index]
    scoped: dict[str, Any] = {**sc.names(), "item": item, "index": index}
    if node.agent is not None:
        return agent_turn(sc, node.agent, node.prompt, scoped)
    assert node.tool is not None
    return sc.complete(sc.step.unit, invoke_tool(sc, node.tool, node.args, scoped))


def _gather(sc: StepContext, node: ParallelNode) -> StepOutcome:
    count = sc.run.fan_out.get(node.id, 0)
    values = [sc.store.node_output(sc.run.id, f"{node.id}[{i}]") for i in range(count)]
    return sc.complete(node.id, values)
