"""Condition nodes: evaluate the expression; its value is the output the edges' ``when`` see."""

from __future__ import annotations

from agentfn.engine._context import StepContext
from agentfn.engine._executors._registry import executor
from agentfn.expressions import compile_expression
from agentfn.runs import StepOutcome
from agentfn.workflows import ConditionNode


@executor(ConditionNode)
def condition_step(sc: StepContext, node: ConditionNode) -> StepOutcome:
    value = compile_expression(node.expression).evaluate(sc.names())
    return sc.complete(sc.step.node, value)
