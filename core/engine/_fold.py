"""The fold: how one step's recorded outcome changes the run record, as a pure function.

``fold`` is what the lifecycle applies under compare-and-swap after a step; ``seed`` is what
a new run starts with. Neither reads a store, sends a job or looks at a clock (the caller
passes ``now``), so a CAS retry can simply run them again on the fresh record, and their
properties can be tested on hand-built records. Rendering the run's ``output`` needs stored
node outputs, so it is the caller's job once ``fold`` has settled the run as completed.
"""

from __future__ import annotations

from collections.abc import Callable

from agentfn.ports import Usage
from agentfn.runs import Run, RunError, RunStatus, StepOutcome
from agentfn.steps import StepKey, entry_key
from agentfn.workflows import AgentNode, Blueprint, JoinNode


def seed(run: Run, bp: Blueprint) -> list[str]:
    """Start a new run's root nodes; returns the step keys it added to ``pending``."""
    added: list[str] = []
    for node in bp.roots:
        key = entry_step(bp, node)
        run.started.add(node)
        run.pending.add(key)
        added.append(key)
    return added


def fold(
    run: Run, bp: Blueprint, key: str, outcome: StepOutcome, *, now: float
) -> list[str] | None:
    """Apply the outcome of step ``key`` to ``run`` in place.

    Moves ``key`` from ``pending`` to ``done``; adds its usage, cost and one ``steps_run``;
    records ``fan_out`` and ``waiting``; adds ``continue_with``; when the outcome completes a
    node, marks it finished, counts its edges' arrivals (starting nodes, propagating skips
    down dead paths, adding a fan-out's gather once every item is done); applies ``fail_run``;
    and settles the status (``running``, ``waiting``, or ``completed`` with ``finished_at``
    = ``now`` when nothing is pending; ``output`` is left for the caller to render).

    Returns the step keys added to ``pending`` (to be sent), or None, leaving ``run``
    untouched, when ``key`` is already done or the run is over: folding twice is a no-op.
    """
    if key in run.done or run.status.terminal:
        return None
    added: list[str] = []

    def add(k: str) -> None:
        if k not in run.done and k not in run.pending:
            run.pending.add(k)
            added.append(k)

    run.done.add(key)
    run.pending.discard(key)
    run.steps_run += 1
    run.usage = Usage(
        prompt_tokens=run.usage.prompt_tokens + outcome.usage.prompt_tokens,
        completion_tokens=run.usage.completion_tokens + outcome.usage.completion_tokens,
    )
    run.cost_usd += outcome.cost_usd
    step = StepKey.parse(key)
    if outcome.fan_out is not None:
        run.fan_out[step.node] = outcome.fan_out
    if outcome.wait is not None:
        run.waiting[step.node] = outcome.wait
    for k in outcome.continue_with:
        add(k)
    if outcome.completes is not None:
        unit = StepKey.parse(outcome.completes)
        if unit.item is not None:
            run.done.add(outcome.completes)
            count = run.fan_out.get(unit.node, 0)
            if all(f"{unit.node}[{i}]" in run.done for i in range(count)):
                add(str(StepKey(unit.node, phase="gather")))
        else:
            run.finished.add(unit.node)
            run.waiting.pop(unit.node, None)
            wake = str(StepKey(unit.node, phase="wake"))
            if wake in run.pending:  # a signal beat the timeout job
                run.pending.discard(wake)
                run.done.add(wake)
            for target, active in outcome.edges.items():
                _arrive(bp, run, target, unit.node, active, add)
    if outcome.fail_run is not None:
        fail_run(run, RunError(step=key, type="WaitTimeout", message=outcome.fail_run), now)
    _settle(run, now)
    return added


def fail_run(run: Run, error: RunError, now: float) -> None:
    """End ``run`` as failed with ``error``."""
    run.status = RunStatus.failed
    run.error = error
    run.finished_at = now


def entry_step(bp: Blueprint, node: str) -> str:
    """The key of a node's first step: turn 0 for an agent node, the node's id otherwise."""
    return entry_key(node, agent=isinstance(bp.node_map[node], AgentNode))


def _settle(run: Run, now: float) -> None:
    if run.status.terminal:
        return
    if run.pending:
        wakes = all(StepKey.parse(k).phase == "wake" for k in run.pending)
        run.status = RunStatus.waiting if wakes else RunStatus.running
        return
    run.status = RunStatus.completed
    run.finished_at = now


def _arrive(
    bp: Blueprint, run: Run, target: str, source: str, active: bool, add: Callable[[str], None]
) -> None:
    """Count an edge reaching ``target``; start it, or skip it when every path to it is dead."""
    run.arrivals.setdefault(target, {})[source] = active
    if target in run.started or target in run.skipped:
        return
    arrived = run.arrivals[target]
    complete = len(arrived) == len(set(bp.incoming.get(target, [])))
    if isinstance(bp.node_map[target], JoinNode):
        if not complete:
            return
        start = any(arrived.values())
    elif active:
        start = True
    elif complete and not any(arrived.values()):
        start = False
    else:
        return
    if start:
        run.started.add(target)
        add(entry_step(bp, target))
    else:
        run.skipped.add(target)
        for edge in bp.outgoing.get(target, []):
            _arrive(bp, run, edge.target, target, False, add)
