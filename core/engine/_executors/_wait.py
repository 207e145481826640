"""Wait nodes: park the run until a named signal or the timeout, whichever comes first.

The start step records the deadline and schedules ``<node>~wake``; a signal (``resume``,
called by ``Engine.signal``) and the wake job race to record the node's output, first
writer wins, so the node finishes exactly once.
"""

from __future__ import annotations

from typing import Any

from agentfn.engine._context import StepContext
from agentfn.engine._executors._registry import executor
from agentfn.errors import Conflict
from agentfn.runs import StepOutcome, Waiting
from agentfn.steps import StepKey
from agentfn.workflows import WaitNode


@executor(WaitNode)
def wait_step(sc: StepContext, node: WaitNode) -> StepOutcome:
    if sc.step.phase is None:
        deadline = sc.clock() + node.timeout_s
        return StepOutcome(
            output={"waiting_for": node.signal, "deadline": deadline},
            wait=Waiting(signal=node.signal, deadline=deadline),
            continue_with=[str(StepKey(node.id, phase="wake"))],
        )
    # The timeout fired before any signal (if a signal won, record_once returns its value).
    timed_out = {"signal": node.signal, "payload": None, "timed_out": True}
    value = sc.store.record_once(sc.store.node_key(sc.run.id, node.id), timed_out)
    if value == timed_out and node.on_timeout == "fail":
        return StepOutcome(
            output=value,
            fail_run=f"wait node {node.id!r} timed out after {node.timeout_s:g}s "
            f"without signal {node.signal!r}",
        )
    return sc.complete(node.id, value)


def resume(sc: StepContext, signal: str, payload: Any) -> StepOutcome:
    """The outcome of step ``<node>~wake`` when signal ``signal`` arrives before the timeout.

    Raises Conflict when the node was already resumed (by another signal or the timeout).
    """
    node = sc.step.node
    value = {"signal": signal, "payload": payload, "timed_out": False}
    won = sc.store.record_once(sc.store.node_key(sc.run.id, node), value)
    if won != value:
        raise Conflict(f"wait node {node!r} was already resumed", field="name")
    outcome = StepOutcome(output=value, completes=node)
    outcome.edges = sc.edges(node, value)
    return outcome
