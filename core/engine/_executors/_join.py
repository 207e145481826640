"""Join nodes: once every incoming edge has arrived, output ``{source: output}`` of the taken ones.

When a join runs is the fold's business (it counts arrivals); this only builds the output.
"""

from __future__ import annotations

from agentfn.engine._context import StepContext
from agentfn.engine._executors._registry import executor
from agentfn.runs import StepOutcome
from agentfn.workflows import JoinNode


@executor(JoinNode)
def join_step(sc: StepContext, node: JoinNode) -> StepOutcome:
    run = sc.run
    arrived = run.arrivals.get(node.id, {})
    value = {
        src: sc.store.node_output(run.id, src)
        for src in sc.blueprint.incoming[node.id]
        if arrived.get(src)
    }
    return sc.complete(sc.step.node, value)
