"""Collaboration: a complex task as a dependency graph of subtasks, each matched to an agent by
capability and load.

``plan`` holds the plan's shape and its validation (nothing runs before a plan is known to be
sound); ``assign_agents`` matches subtasks to agents. Both are pure: they read no store and call
no model, so a plan from a planner agent and a plan written by hand are checked the same way.
``planner`` has an agent of the team write the plan for a complex task; ``compile`` turns a
checked plan into a workflow the engine runs; ``status`` reads what a
running one is doing.
"""

from agentfn.collaboration.assign import assign_agents
from agentfn.collaboration.compile import collaboration_blueprint
from agentfn.collaboration.plan import Plan, ResultSpec, Subtask, check_plan, topological_order
from agentfn.collaboration.planner import ComplexTask, Planning, log_planning, plan_task
from agentfn.collaboration.status import (
    AgentLoad,
    CollaborationView,
    SubtaskView,
    agent_loads,
    collaboration_view,
)
from agentfn.errors import PlanError

__all__ = [
    "AgentLoad",
    "CollaborationView",
    "ComplexTask",
    "Plan",
    "PlanError",
    "Planning",
    "ResultSpec",
    "Subtask",
    "SubtaskView",
    "agent_loads",
    "assign_agents",
    "check_plan",
    "collaboration_blueprint",
    "collaboration_view",
    "log_planning",
    "plan_task",
    "topological_order",
]
