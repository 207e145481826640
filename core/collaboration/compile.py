"""A plan as a workflow, so the engine runs a collaboration like any blueprint: every subtask
is an agent node whose step key is its id, with the engine's retries, dead letters, crash
repair, replay and cost accounting.

The subtasks' texts are untrusted, so they never become templates: they travel as the run's
input (``input['tasks'][id]``) and each prompt only reads them. A subtask with one dependency
follows it by an edge; one with several waits behind a join node that requires them all (a
node without one starts on the first edge that reaches it). A subtask that fails for good
does not end the run: it is recorded in ``Run.failures`` and what depends on it is skipped.
The run's output is the results of the subtasks nothing depends on that completed, or, with
the plan's ``result``, those results compiled into one by an aggregate node. The generated
blueprint is validated like a file, so every name it reads is checked before it
runs.
"""

from __future__ import annotations

from typing import Any

from agentfn.collaboration.assign import assign_agents
from agentfn.collaboration.plan import Plan, check_plan, final_subtasks, topological_order
from agentfn.errors import PlanError
from agentfn.workflows import (
    MAX_NODES,
    LoadedBlueprint,
    parse_blueprint,
    validate_blueprint,
)
from agentfn.yaml_source import YamlSource

SOURCE = "<collaboration>"  # where validation errors of a generated blueprint point
# The run's input key holding the plan's shape (capability, agent, dependencies per subtask):
# the status view reads it from the run, and a replay carries it along.
COLLABORATION = "collaboration"


def collaboration_blueprint(
    plan: Plan,
    team: LoadedBlueprint,
    *,
    name: str = "collaboration",
    planner: dict[str, Any] | None = None,
) -> tuple[LoadedBlueprint, dict[str, Any]]:
    """The workflow running ``plan`` with ``team``'s agents (and its models, prices, tools),
    and the input to start it with (``planner``: who planned it, kept for the view). Raises
    :class:`PlanError` for a plan that cannot run."""
    agents = team.blueprint.agents
    check_plan(plan, agents)
    chosen = assign_agents(plan, agents)
    by_id = {s.id: s for s in plan.subtasks}
    taken = set(by_id)
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, str]] = []
    for sub_id in topological_order(plan):
        sub = by_id[sub_id]
        nodes.append(
            {
                "id": sub.id,
                "type": "agent",
                "agent": chosen[sub.id],
                "prompt": _prompt(sub.id, sub.depends_on),
                "retry": sub.retry.model_dump(mode="json"),
                "description": f"needs {sub.capability}",
                "on_failure": "continue",  # the other results survive a failed subtask
            }
        )
        if len(sub.depends_on) == 1:
            edges.append({"from": sub.depends_on[0], "to": sub.id})
        elif sub.depends_on:
            join = _fresh(f"_after_{len(nodes)}", taken)
            nodes.append({"id": join, "type": "join", "require": "all"})
            edges += [{"from": dep, "to": join} for dep in sub.depends_on]
            edges.append({"from": join, "to": sub.id})
    output = None
    if plan.result is not None:
        result = _fresh("_result", taken)
        spec = plan.result.model_dump(exclude_none=True)
        nodes.append({"id": result, "type": "aggregate", **spec})
        edges += [{"from": sub, "to": result} for sub in final_subtasks(plan)]
        output = f"{{{{ steps['{result}'].output if '{result}' in steps else None }}}}"
    if len(nodes) > MAX_NODES:
        raise PlanError(
            f"the plan needs {len(nodes)} workflow nodes (a subtask each, and a join for each "
            f"subtask with several dependencies), more than the {MAX_NODES} a workflow may have",
            field="subtasks",
        )
    own = team.blueprint.model_dump(mode="json", by_alias=True)
    data = {
        "name": name,
        "description": f"{len(plan.subtasks)} subtasks",
        **{key: own[key] for key in ("tools", "models", "prices", "agents")},
        "inputs": {"tasks": {"type": "object"}, COLLABORATION: {"type": "object"}},
        "nodes": nodes,
        "edges": edges,
        "output": output,
    }
    source = YamlSource(data=data, file=SOURCE)
    bp = parse_blueprint(source)
    validate_blueprint(bp, source, team.base_path, http_tools=team.http_tools)
    loaded = LoadedBlueprint(
        blueprint=bp, base_dir=team.base_dir, source=SOURCE, http_tools=team.http_tools
    )
    shape = {
        s.id: {"capability": s.capability, "agent": chosen[s.id], "depends_on": s.depends_on}
        for s in plan.subtasks
    }
    about: dict[str, Any] = {"subtasks": shape}
    if planner is not None:
        about["planner"] = planner
    return loaded, {"tasks": {s.id: s.task for s in plan.subtasks}, COLLABORATION: about}


def _prompt(sub_id: str, depends_on: list[str]) -> str:
    """The subtask's text, then each dependency's result. Ids are node ids (no quotes), so
    they are safe inside the template; the texts are read from the input, never spliced in."""
    parts = [f"{{{{ input['tasks']['{sub_id}'] }}}}"]
    parts += [f"The result of {dep}:\n{{{{ steps['{dep}'].output }}}}" for dep in depends_on]
    return "\n\n".join(parts)


def _fresh(base: str, taken: set[str]) -> str:
    """``base``, or ``base`` behind underscores until no subtask has that id."""
    name = base
    while name in taken:
        name = "_" + name
    taken.add(name)
    return name
