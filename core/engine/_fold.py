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
from agentfn.runs import MAX_FLAGS, AgentUsage, Run, RunError, RunStatus, StepOutcome
from agentfn.steps import StepKey, entry_key, part_key
from agentfn.workflows import (
    AgentNode,
    AggregateNode,
    Blueprint,
    JoinNode,
    LoopNode,
    ParallelNode,
)


def seed(run: Run, bp: Blueprint) -> list[str]:
    """Start a new run's root nodes; returns the step keys to send (those an agent's
    concurrency limit holds are pending, not returned)."""
    added: list[str] = []
    add = _adder(run, bp, added)
    for node in bp.roots:
        run.started.add(node)
        add(entry_step(bp, node))
    return added


def fold(
    run: Run, bp: Blueprint, key: str, outcome: StepOutcome, *, now: float
) -> list[str] | None:
    """Apply the outcome of step ``key`` to ``run`` in place.

    Removes ``key`` from ``pending``; adds its usage, cost and one ``steps_run``; records
    ``fan_out`` and ``waiting``; adds ``continue_with`` (new steps: a next turn, the items of a
    fan-out, a wake); a completed fan-out item changes nothing more (items are counted by
    their markers, and ``gather`` starts the gather); when it completes a node, marks it
    finished and counts its edges' arrivals (starting nodes, propagating skips down dead
    paths); applies ``fail_run``; and settles the status (``running``, ``waiting``, or
    ``completed`` with ``finished_at`` = ``now`` when nothing is pending; ``output`` is left
    for the caller).

    Returns the step keys added to ``pending`` (to be sent), or None, leaving ``run``
    untouched, when ``key`` is not pending (already folded) or the run is over: folding twice
    is a no-op. Only pending keys fold, so the record never lists the steps already taken.
    """
    if key not in run.pending or run.status.terminal:
        return None
    added: list[str] = []
    add = _adder(run, bp, added, never=key)  # never the step being folded: it ran
    run.pending.discard(key)
    run.steps_run += 1
    run.usage = Usage(
        prompt_tokens=run.usage.prompt_tokens + outcome.usage.prompt_tokens,
        completion_tokens=run.usage.completion_tokens + outcome.usage.completion_tokens,
    )
    run.cost_usd += outcome.cost_usd
    run.cached_calls += outcome.cached_calls
    step = StepKey.parse(key)
    if outcome.usage.total_tokens or outcome.cost_usd or outcome.cached_calls:
        _charge(run, step_agent(bp, step) or "(none)", outcome)
    if outcome.flags:
        run.flags = [*run.flags, *outcome.flags][:MAX_FLAGS]
    if outcome.fan_out is not None:
        run.fan_out[step.node] = outcome.fan_out
    if outcome.wait is not None:
        run.waiting[step.node] = outcome.wait
    for k in outcome.continue_with:
        add(k)
    if outcome.completes is not None:
        _release(run, bp, added, lambda u: u == outcome.completes)
        unit = StepKey.parse(outcome.completes)
        if not unit.within_node:  # an item or a loop's part completes a piece, not the node
            run.finished.add(unit.node)
            _leave(run, unit.node)
            # A signal beat the timeout job: when that job comes, it is no longer pending.
            run.pending.discard(str(StepKey(unit.node, phase="wake")))
            for target, active in outcome.edges.items():
                _arrive(bp, run, target, unit.node, active, add)
    if outcome.fail_run is not None:
        fail_run(run, RunError(step=key, type="WaitTimeout", message=outcome.fail_run), now)
    _settle(run, now)
    return added


def gather(run: Run, node: str, *, now: float) -> list[str] | None:
    """Every item of fan-out ``node`` is marked done: add its gather step.

    Items whose outcome added nothing to the run (no usage, cost or new steps) were never
    folded one by one; their keys leave ``pending`` here, counted in ``steps_run``. Returns
    the gather's key, or None if an earlier arrival added it (or the run is over).
    """
    key = str(StepKey(node, phase="gather"))
    if run.status.terminal or node in run.finished or node in run.failures or key in run.pending:
        return None
    items = [k for k in run.pending if _is_item_of(k, node)]
    run.pending.difference_update(items)
    run.steps_run += len(items)
    run.pending.add(key)
    _settle(run, now)
    return [key]


def _charge(run: Run, agent: str, outcome: StepOutcome) -> None:
    spent = run.agent_usage.get(agent) or AgentUsage()
    run.agent_usage[agent] = AgentUsage(
        calls=spent.calls + 1,
        prompt_tokens=spent.prompt_tokens + outcome.usage.prompt_tokens,
        completion_tokens=spent.completion_tokens + outcome.usage.completion_tokens,
        cost_usd=spent.cost_usd + outcome.cost_usd,
        cached_calls=spent.cached_calls + outcome.cached_calls,
    )


def marker_suffices(outcome: StepOutcome) -> bool:
    """Whether a step completing a fan-out item can skip folding into the run record: it adds
    no usage, cost, steps, wait, failure or flag, so the item's marker is all the run needs."""
    return (
        not outcome.continue_with
        and outcome.fan_out is None
        and outcome.wait is None
        and outcome.fail_run is None
        and outcome.cost_usd == 0
        and outcome.usage.prompt_tokens == 0
        and outcome.usage.completion_tokens == 0
        and outcome.cached_calls == 0
        and not outcome.flags
    )


def item_completed(outcome: StepOutcome) -> StepKey | None:
    """The fan-out item (``node[i]``) a step's outcome completes, if it completes one."""
    if outcome.completes is None:
        return None
    unit = StepKey.parse(outcome.completes)
    return unit if unit.item is not None else None


def _is_item_of(key: str, node: str) -> bool:
    step = StepKey.parse(key)
    return step.node == node and step.item is not None


def fail_node(
    run: Run, bp: Blueprint, key: str, error: RunError, *, now: float
) -> list[str] | None:
    """Step ``key`` of a node with ``on_failure: continue`` failed for good: the node ends
    failed (``failures``), its other pending steps (fan-out items in flight) are dropped, and
    its edges arrive as not taken, so what depends on it is skipped and the run goes on.

    Returns the step keys added (a join that still starts), or None when ``key`` is not
    pending or the run is over (failing twice is a no-op)."""
    if key not in run.pending or run.status.terminal:
        return None
    node = StepKey.parse(key).node
    added: list[str] = []
    add = _adder(run, bp, added)
    run.pending.difference_update([k for k in run.pending if StepKey.parse(k).node == node])
    run.held = [k for k in run.held if StepKey.parse(k).node != node]
    _release(run, bp, added, lambda u: StepKey.parse(u).node == node)
    run.steps_run += 1
    run.failures[node] = error
    _leave(run, node)
    for edge in bp.outgoing.get(node, []):
        _arrive(bp, run, edge.target, node, False, add)
    _settle(run, now)
    return added


def fail_run(run: Run, error: RunError, now: float) -> None:
    """End ``run`` as failed with ``error``."""
    run.status = RunStatus.failed
    run.error = error
    run.finished_at = now


def entry_step(bp: Blueprint, node: str) -> str:
    """The key of a node's first step: turn 0 for an agent node or a judged aggregate, the
    first part of round 1 for a loop, the node's id otherwise."""
    spec = bp.node_map[node]
    if isinstance(spec, LoopNode):
        return loop_part_step(spec, 1, 0)
    judged = isinstance(spec, AggregateNode) and spec.judge is not None
    return entry_key(node, agent=isinstance(spec, AgentNode) or judged)


def loop_part_step(node: LoopNode, round_: int, index: int) -> str:
    """The first step of part ``index`` of round ``round_`` of ``node``."""
    part = node.parts[index]
    return part_key(node.id, round_, part.id, agent=part.agent is not None)


def _adder(
    run: Run, bp: Blueprint, added: list[str], *, never: str | None = None
) -> Callable[[str], None]:
    """Add a step key to ``pending`` (and to ``added``, to be sent) unless it is there; a
    unit's first step whose agent has no free slot is held instead (``Run.held``)."""

    def add(k: str) -> None:
        if k == never or k in run.pending:
            return
        run.pending.add(k)
        limited = _slot_agent(bp, k, first=True)
        if limited is not None:
            agent, most = limited
            busy = run.slots.setdefault(agent, [])
            if len(busy) >= most:
                run.held.append(k)
                return
            busy.append(StepKey.parse(k).unit)
        added.append(k)

    return add


def holds_slot(bp: Blueprint, key: str) -> bool:
    """Whether step ``key`` works for an agent with a concurrency limit: what it completes
    must be folded into the run record, which frees the slot."""
    return _slot_agent(bp, key, first=False) is not None


def step_agent(bp: Blueprint, step: StepKey) -> str | None:
    """The agent whose turn ``step`` is, if it is one."""
    if step.turn is None:
        return None
    node = bp.node_map.get(step.node)
    if isinstance(node, AgentNode) or (isinstance(node, ParallelNode) and step.item is not None):
        return node.agent
    if isinstance(node, LoopNode) and step.part is not None:
        return next((p.agent for p in node.parts if p.id == step.part), None)
    if isinstance(node, AggregateNode):
        return node.judge
    return None


def _slot_agent(bp: Blueprint, key: str, *, first: bool) -> tuple[str, int] | None:
    """The limited agent step ``key`` works for, and its limit; ``first``: only for the first
    step of a unit (turn 0), which is what takes a slot."""
    step = StepKey.parse(key)
    if first and step.turn != 0:
        return None
    agent = step_agent(bp, step)
    if agent is None:
        return None
    spec = bp.agents.get(agent)
    if spec is None or spec.max_concurrency is None:
        return None
    return agent, spec.max_concurrency


def _waits_for(bp: Blueprint, key: str) -> str | None:
    limited = _slot_agent(bp, key, first=True)
    return limited[0] if limited is not None else None


def _release(run: Run, bp: Blueprint, added: list[str], ended: Callable[[str], bool]) -> None:
    """Free the slots of the units ``ended`` picks; each freed slot goes to the first held
    step of the same agent, which is sent."""
    for agent, busy in list(run.slots.items()):
        freed = [u for u in busy if ended(u)]
        if not freed:
            continue
        busy[:] = [u for u in busy if not ended(u)]
        for _ in freed:
            nxt = next((k for k in run.held if _waits_for(bp, k) == agent), None)
            if nxt is None:
                break
            run.held.remove(nxt)
            busy.append(StepKey.parse(nxt).unit)
            added.append(nxt)
        if not busy:
            del run.slots[agent]


def _leave(run: Run, node: str) -> None:
    """A node that ended (finished or failed) leaves ``started``, its arrivals (a join's
    output has read them) and its wait: what stays grows with the blueprint's nodes, not
    with the run's steps."""
    run.started.discard(node)
    run.arrivals.pop(node, None)
    run.waiting.pop(node, None)


def _settle(run: Run, now: float) -> None:
    if run.status.terminal:
        return
    if run.pending or run.started:
        # Started nodes with nothing pending: a fan-out whose last items are folded and
        # whose gather the item markers have yet to add (``gather``). Not done yet.
        wakes = bool(run.pending) and all(StepKey.parse(k).phase == "wake" for k in run.pending)
        run.status = RunStatus.waiting if wakes else RunStatus.running
        return
    run.status = RunStatus.completed
    run.finished_at = now


def _arrive(
    bp: Blueprint, run: Run, target: str, source: str, active: bool, add: Callable[[str], None]
) -> None:
    """Count an edge reaching ``target``; start it, or skip it when every path to it is dead.

    Arrivals are kept only while they can still decide something: until a node starts (a
    join: until it finishes, for its output) or is skipped."""
    if target in run.started or target in run.finished or target in run.skipped:
        return
    arrived = run.arrivals.setdefault(target, {})
    arrived[source] = active
    complete = len(arrived) == len(set(bp.incoming.get(target, [])))
    node = bp.node_map[target]
    if isinstance(node, JoinNode):
        if not complete:
            return
        start = all(arrived.values()) if node.require == "all" else any(arrived.values())
    elif active:
        start = True
    elif complete and not any(arrived.values()):
        start = False
    else:
        return
    if start:
        run.started.add(target)
        if not isinstance(bp.node_map[target], JoinNode):
            del run.arrivals[target]
        add(entry_step(bp, target))
    else:
        run.skipped.add(target)
        del run.arrivals[target]
        for edge in bp.outgoing.get(target, []):
            _arrive(bp, run, edge.target, target, False, add)
