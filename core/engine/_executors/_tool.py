"""Tool nodes: render the arguments, call the tool, record its result as the node's output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentfn.engine._context import StepContext
from agentfn.engine._executors._registry import executor
from agentfn.errors import StepFailed
from agentfn.runs import StepOutcome
from agentfn.tool_calls import calling
from agentfn.workflows import ToolNode, render_args


@executor(ToolNode)
def tool_step(sc: StepContext, node: ToolNode) -> StepOutcome:
    arguments = as_args(render_args(node.args, sc.names()))
    outcome = sc.complete(sc.step.node, call_tool(sc, node.tool, arguments))
    outcome.input = arguments  # what the console and the diff show as the step's input
    return outcome


def invoke_tool(sc: StepContext, tool: str, args: Any, names: Mapping[str, Any]) -> Any:
    """Call ``tool`` with ``args`` rendered against ``names`` (also a parallel item's body)."""
    return call_tool(sc, tool, as_args(render_args(args, names)))


def call_tool(sc: StepContext, tool: str, arguments: dict[str, Any]) -> Any:
    with calling(sc.run.id, str(sc.step)):
        return sc.tools.get(tool).invoke(arguments)


def as_args(value: Any) -> dict[str, Any]:
    """Rendered tool arguments, which must be a mapping."""
    if not isinstance(value, dict):
        raise StepFailed(f"tool arguments must render to a mapping, got {type(value).__name__}")
    return value
