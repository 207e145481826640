"""Collaboration: a complex task as a dependency graph of subtasks, each matched to an agent by
capability and load.

``plan`` holds the plan's shape and its validation (nothing runs before a plan is known to be
sound); ``assign_agents`` matches subtasks to agents. Both are pure: they read no store and call
no model, so a plan from a planner agent and a plan written by hand are checked the same way.
``compile`` turns a checked plan into a workflow the engine runs.
"""

from agentfn.collaboration.assign import assign_agents
from agentfn.collaboration.compile import collaboration_blueprint
from agentfn.collaboration.plan import Plan, PlanError, Subtask, check_plan, topological_order

__all__ = [
    "Plan",
    "PlanError",
    "Subtask",
    "assign_agents",
    "check_plan",
    "collaboration_blueprint",
    "topological_order",
]
