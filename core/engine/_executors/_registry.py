"""The executor registry: node kind → the function that executes one step of that kind.

The lifecycle knows nothing about node kinds; it builds a StepContext and calls ``execute``,
which finds the node and hands it to the executor registered for its class. A new node
kind is a new module with one ``@executor(NewNode)`` function, imported by the package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from agentfn.engine._context import StepContext
from agentfn.errors import StepFailed
from agentfn.runs import StepOutcome

N = TypeVar("N", bound=BaseModel)
Executor = Callable[[StepContext, N], StepOutcome]

EXECUTORS: dict[type[BaseModel], Callable[[StepContext, Any], StepOutcome]] = {}


def executor(kind: type[N]) -> Callable[[Executor[N]], Executor[N]]:
    """Register the decorated function as the executor of ``kind`` nodes (one per kind)."""

    def register(fn: Executor[N]) -> Executor[N]:
        if kind in EXECUTORS:
            raise ValueError(f"node kind {kind.__name__} already has an executor")
        EXECUTORS[kind] = fn
        return fn

    return register


def execute(sc: StepContext) -> StepOutcome:
    """Execute the step ``sc.step`` with its node kind's executor."""
    bp = sc.blueprint
    node = bp.node_map.get(sc.step.node)
    if node is None:
        raise StepFailed(f"node {sc.step.node!r} is not in blueprint {bp.name!r}")
    run = EXECUTORS.get(type(node))
    if run is None:
        raise StepFailed(f"node {node.id!r}: no executor for kind {type(node).__name__}")
    return run(sc, node)
