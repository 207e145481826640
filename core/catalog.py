"""The catalog: agents, workflows and HTTP tools registered over the API.

Stored in the BlobStore next to runs, so every handler on every cloud sees the same catalog.
Relative paths in stored workflows (tool modules, scripted-model rules) resolve from the
deployed project folder. Agents a workflow names but does not define inline come from the
catalog; so do the HTTP tools it names that no Python module defines.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from agentfn.agents import AgentSpec
from agentfn.errors import BlueprintError, NotFound, ValidationFailed
from agentfn.http_tools import HttpToolSpec
from agentfn.model_policy import ModelPolicy
from agentfn.ports import BlobStore
from agentfn.project_files import project_file
from agentfn.runs import iter_keys
from agentfn.tools import load_registry
from agentfn.workflows import (
    Blueprint,
    LoadedBlueprint,
    agents_of,
    check_deployment_limits,
    parse_blueprint,
    tools_of,
    validate_blueprint,
)
from agentfn.yaml_source import parse_yaml

NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class Catalog:
    def __init__(
        self,
        blobs: BlobStore,
        project_dir: Path,
        model_policy: ModelPolicy | None = None,
        *,
        delivery_limit: int = 5,
        step_timeout_s: float = 900.0,
    ) -> None:
        self.blobs = blobs
        self.project_dir = project_dir
        self.model_policy = model_policy or ModelPolicy()
        # The deployment's queue delivery limit and step timeout: a stored workflow must fit.
        self.delivery_limit = delivery_limit
        self.step_timeout_s = step_timeout_s

    # ------------------------------------------------------------------ agents

    def put_agent(self, name: str, spec: AgentSpec) -> AgentSpec:
        self.blobs.put(f"catalog/agents/{name}.json", spec.model_dump_json().encode())
        return spec

    def get_agent(self, name: str) -> AgentSpec:
        try:
            return AgentSpec.model_validate_json(self.blobs.get(f"catalog/agents/{name}.json").data)
        except NotFound:
            raise NotFound(f"agent {name!r} not found", field="name") from None

    # ------------------------------------------------------------------ tools

    def put_tool(self, spec: HttpToolSpec) -> HttpToolSpec:
        self.blobs.put(f"catalog/tools/{spec.name}.json", spec.model_dump_json().encode())
        return spec

    def get_tool(self, name: str) -> HttpToolSpec:
        try:
            return HttpToolSpec.model_validate_json(
                self.blobs.get(f"catalog/tools/{name}.json").data
            )
        except NotFound:
            raise NotFound(f"tool {name!r} not found", field="name") from None

    def http_tools(self) -> list[HttpToolSpec]:
        return [
            HttpToolSpec.model_validate_json(self.blobs.get(key).data)
            for key in iter_keys(self.blobs, "catalog/tools/")
        ]

    def python_tools(self, module_paths: list[str]) -> list[str]:
        return load_registry(
            [project_file(self.project_dir, p, "tool module") for p in module_paths]
        ).names()

    # ------------------------------------------------------------------ workflows

    def put_workflow(self, name: str, text: str) -> LoadedBlueprint:
        """Validate ``text`` fully, then store it; nothing is stored when it is invalid."""
        loaded = self._resolve(name, text)
        self.blobs.put(f"catalog/workflows/{name}.yaml", text.encode())
        return loaded

    def workflow_names(self) -> list[str]:
        """The stored workflows' names, sorted (one listing; no workflow is read)."""
        prefix = "catalog/workflows/"
        return sorted(k[len(prefix) : -len(".yaml")] for k in iter_keys(self.blobs, prefix))

    def workflow_text(self, name: str) -> str:
        try:
            return self.blobs.get(f"catalog/workflows/{name}.yaml").data.decode()
        except NotFound:
            raise NotFound(f"workflow {name!r} not found", field="workflow") from None

    def load_workflow(self, name: str) -> LoadedBlueprint:
        return self._resolve(name, self.workflow_text(name))

    def agent_workflow(self, agent: str, models_from: str) -> LoadedBlueprint:
        """A one-node workflow asking stored agent ``agent`` a prompt (input ``prompt``), on
        the models, prices and tool modules of stored workflow ``models_from``: a stored agent
        names its model, and a workflow says what that name is."""
        self.get_agent(agent)  # an unknown agent is a 404 before anything else
        source = parse_yaml(self.workflow_text(models_from), f"workflows/{models_from}")
        data = source.data if isinstance(source.data, dict) else {}
        name = f"agent.{agent}"[:64]
        doc = {key: data[key] for key in ("tools", "models", "prices") if key in data}
        doc.update(
            name=name,
            description=f"stored agent {agent} on the models of {models_from}",
            inputs={"prompt": {"type": "string", "description": "what to ask the agent"}},
            nodes=[
                {"id": "answer", "type": "agent", "agent": agent, "prompt": "{{ input.prompt }}"}
            ],
            output="{{ steps.answer.output }}",
        )
        return self._resolve(name, yaml.safe_dump(doc, sort_keys=False))

    def _resolve(self, name: str, text: str) -> LoadedBlueprint:
        source = parse_yaml(text, f"workflows/{name}")
        bp = parse_blueprint(source)
        if bp.name != name:
            raise ValidationFailed(
                f"the blueprint is named {bp.name!r} but was sent to workflows/{name}",
                field="name",
            )
        self._add_catalog_agents(bp)
        python = set(self.python_tools(bp.tools)) if bp.tools else set()
        wanted = _tool_names(bp) - python
        http = []
        for tool_name in sorted(wanted):
            try:
                http.append(self.get_tool(tool_name))
            except NotFound:
                continue  # validation below reports the unknown tool with its line
        validate_blueprint(
            bp, source, self.project_dir, http_tools=http, model_policy=self.model_policy
        )
        check_deployment_limits(
            bp, delivery_limit=self.delivery_limit, step_timeout_s=self.step_timeout_s
        )
        return LoadedBlueprint(
            blueprint=bp, base_dir=str(self.project_dir), source=source.file, http_tools=http
        )

    def _add_catalog_agents(self, bp: Blueprint) -> None:
        for agent in sorted({a for node in bp.nodes for a in agents_of(node)}):
            if agent not in bp.agents:
                try:
                    bp.agents[agent] = self.get_agent(agent)
                except NotFound:
                    continue
                except ValidationError as exc:  # a stored agent no longer parses
                    raise BlueprintError(f"stored agent {agent!r} is invalid: {exc}") from None


def _tool_names(bp: Blueprint) -> set[str]:
    names = {t for agent in bp.agents.values() for t in agent.tools}
    for node in bp.nodes:
        names.update(tools_of(node))
    return names
