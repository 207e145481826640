"""Which agent does which subtask: by capability, then by load.

Subtasks are taken in dependency order (``topological_order``); each goes to the agent with
its capability that has the fewest subtasks so far, ties broken by the agent's name. So the
same plan and team always give the same assignment, and agents of one skill share its work
evenly.
"""

from __future__ import annotations

from collections.abc import Mapping

from agentfn.agents import AgentSpec
from agentfn.collaboration.plan import Plan, topological_order


def assign_agents(plan: Plan, agents: Mapping[str, AgentSpec]) -> dict[str, str]:
    """Subtask id -> agent name for a checked ``plan`` (see ``check_plan``)."""
    by_id = {s.id: s for s in plan.subtasks}
    load = dict.fromkeys(agents, 0)
    out: dict[str, str] = {}
    for sub_id in topological_order(plan):
        capability = by_id[sub_id].capability
        able = [name for name, spec in agents.items() if capability in spec.capabilities]
        chosen = min(able, key=lambda name: (load[name], name))
        load[chosen] += 1
        out[sub_id] = chosen
    return out
