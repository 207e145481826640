"""A collaboration written as a file: the team (a blueprint file beside it) and the plan.

```yaml
team: team.yaml          # its agents, models, prices and tools do the work
name: launch-brief       # the run's workflow name (default: collaboration)
subtasks:
  - {id: draft, task: Draft the brief., capability: write}
  - {id: review, task: Review it., capability: review, depends_on: [draft]}
result: {strategy: judge, judge: editor}   # optional: compile the final results into one
```

Instead of ``subtasks``, a ``task:`` (``{task, planner, max_subtasks}``) has the team's
planner agent write the plan (``planner.plan_task``), which is checked like a written one.

Every problem names the file and line, the plan's ones too (a cycle points at the subtask
that starts it; a planner's bad plan, the task), because a person wrote it. The team must
live inside the file's folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentfn.collaboration.compile import collaboration_blueprint
from agentfn.collaboration.plan import MAX_SUBTASKS, Plan, ResultSpec, Subtask
from agentfn.collaboration.planner import ComplexTask, ModelFactory, Planning, plan_task
from agentfn.errors import PlanError, UserError
from agentfn.project_files import project_file
from agentfn.workflows import LoadedBlueprint, load_blueprint
from agentfn.yaml_source import PathKey, load_yaml_file

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class CollaborationFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team: str = Field(min_length=1)
    name: str = Field(default="collaboration", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    subtasks: list[Subtask] | None = Field(default=None, min_length=1, max_length=MAX_SUBTASKS)
    task: ComplexTask | None = None
    result: ResultSpec | None = None

    @model_validator(mode="after")
    def _subtasks_or_task(self) -> CollaborationFile:
        if (self.subtasks is None) == (self.task is None):
            raise ValueError("give exactly one of 'subtasks' or 'task' (for a planner agent)")
        return self


def load_collaboration(
    path: str | Path, models: ModelFactory
) -> tuple[LoadedBlueprint, dict[str, object], Planning | None]:
    """The workflow and input of the collaboration in ``path`` (see ``collaboration_blueprint``),
    and the planning when a planner agent wrote the plan (``models`` builds its model); a
    ``BlueprintError`` naming the file and line for anything that cannot run."""
    path = Path(path)
    source = load_yaml_file(path)
    if not isinstance(source.data, dict):
        raise source.error((), "a collaboration must be a YAML mapping (team, subtasks)")
    try:
        spec = CollaborationFile.model_validate(source.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc: PathKey = tuple(p if isinstance(p, int) else str(p) for p in first["loc"])
        message = "unknown field" if first["type"] == "extra_forbidden" else str(first["msg"])
        raise source.error(loc, message.removeprefix("Value error, ")) from None
    try:
        team_path = project_file(path.resolve().parent, spec.team, "team")
    except UserError as exc:
        raise source.error(("team",), exc.message) from None
    team = load_blueprint(team_path)
    planning: Planning | None = None
    try:
        if spec.task is not None:
            if spec.result is not None:
                spec.task.result = spec.result
            planning = plan_task(spec.task, team, models)
            plan = planning.plan
        else:
            plan = Plan(subtasks=spec.subtasks or [], result=spec.result)
        about = planning.summary() if planning is not None else None
        loaded, given = collaboration_blueprint(plan, team, name=spec.name, planner=about)
    except PlanError as exc:
        raise source.error(_path_of(exc.field or ""), exc.message) from None
    return loaded, given, planning


def _path_of(field: str) -> PathKey:
    """``subtasks[2].depends_on[0]`` as the path ``("subtasks", 2, "depends_on", 0)``."""
    return tuple(int(m[2]) if m[2] else m[1] for m in _PART.finditer(field))
