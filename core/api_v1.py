"""The v1 routes: runs, catalog (agents, workflows) and tools.

Imported on the first request that needs them, so a cold start answering /healthz does not pay
for the run, workflow and response models.
"""

from __future__ import annotations

import json
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from agentfn import api_models as m
from agentfn.agents import AgentSpec
from agentfn.api import JSON_TYPES, YAML_TYPES, Call, Request, Response, Services, json_response
from agentfn.errors import ToolError, UnsupportedMediaType, UserError, ValidationFailed
from agentfn.http_tools import HttpTool, HttpToolSpec
from agentfn.tools import ToolRegistry, load_registry

BaseModelT = TypeVar("BaseModelT", bound=BaseModel)


def parse_json_body(request: Request, model: type[BaseModelT]) -> BaseModelT:
    raw = request.body or b"{}"
    if request.body and request.content_type not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"send JSON with content-type application/json (got {request.content_type or 'none'})",
            field="content-type",
        )
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"body is not valid JSON: {exc}", field="body") from None
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object", field="body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise ValidationFailed(f"{where}: {message}", field=where) from None


# ---------------------------------------------------------------------- runs


def create_run(services: Services, call: Call) -> Response:
    body = call.body(m.CreateRun)
    loaded = services.catalog.load_workflow(body.workflow)
    try:
        run = services.engine.start(
            loaded, body.input, correlation_id=call.correlation_id, priority=body.priority
        )
    except UserError as exc:
        raise ValidationFailed(exc.message, field=exc.field) from None
    return json_response(202, m.RunSummary.of(run), {"location": f"/v1/runs/{run.id}"})


def list_runs(services: Services, call: Call) -> Response:
    query = call.request.query
    try:
        limit = int(query.get("limit", "50"))
    except ValueError:
        raise ValidationFailed("limit must be an integer", field="limit") from None
    if not 1 <= limit <= 200:
        raise ValidationFailed("limit must be between 1 and 200", field="limit")
    cursor = query.get("cursor") or None
    if cursor is not None and not re.fullmatch(r"index/runs/[0-9]{13}_run_[0-9a-f]{23}", cursor):
        raise ValidationFailed("cursor is not one this API returned", field="cursor")
    runs, next_cursor = services.engine.store.list_runs(cursor=cursor, limit=limit)
    page = m.RunPage(items=[m.RunSummary.of(r) for r in runs], next_cursor=next_cursor)
    return json_response(200, page)


def get_run(services: Services, call: Call) -> Response:
    run = services.engine.store.get(call.params["run_id"])
    steps = list(services.engine.store.steps(run.id))
    return json_response(200, m.RunView.full(run, steps))


def cancel_run(services: Services, call: Call) -> Response:
    run = services.engine.cancel(call.params["run_id"])
    return json_response(200, m.RunSummary.of(run))


def replay_run(services: Services, call: Call) -> Response:
    body = call.body(m.ReplayRun)
    run = services.engine.replay(call.params["run_id"], live=body.live)
    return json_response(202, m.RunSummary.of(run), {"location": f"/v1/runs/{run.id}"})


def signal_run(services: Services, call: Call) -> Response:
    body = call.body(m.Signal)
    run = services.engine.signal(call.params["run_id"], call.params["name"], body.payload)
    return json_response(202, m.RunSummary.of(run))


# ------------------------------------------------------------------ catalog


def get_agent(services: Services, call: Call) -> Response:
    return json_response(200, services.catalog.get_agent(call.params["name"]))


def put_agent(services: Services, call: Call) -> Response:
    spec = call.body(AgentSpec)
    return json_response(200, services.catalog.put_agent(call.params["name"], spec))


def get_workflow(services: Services, call: Call) -> Response:
    name = call.params["name"]
    text = services.catalog.workflow_text(name)
    bp = services.catalog.load_workflow(name).blueprint
    view = m.WorkflowView(
        name=bp.name,
        description=bp.description,
        nodes=len(bp.nodes),
        edges=len(bp.edges),
        inputs={k: v.model_dump() for k, v in bp.inputs.items()},
        source=text,
    )
    return json_response(200, view)


def put_workflow(services: Services, call: Call) -> Response:
    request = call.request
    if request.content_type not in (*YAML_TYPES, *JSON_TYPES):
        raise UnsupportedMediaType(
            "send the blueprint as application/yaml (or JSON)", field="content-type"
        )
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError("body is not UTF-8 text", field="body") from None
    if request.content_type in JSON_TYPES:
        try:
            json.loads(text)  # JSON is YAML, but say so clearly when it is broken JSON
        except ValueError as exc:
            raise UserError(f"body is not valid JSON: {exc}", field="body") from None
    loaded = services.catalog.put_workflow(call.params["name"], text)
    bp = loaded.blueprint
    view = m.WorkflowView(
        name=bp.name,
        description=bp.description,
        nodes=len(bp.nodes),
        edges=len(bp.edges),
        inputs={k: v.model_dump() for k, v in bp.inputs.items()},
        source=text,
    )
    return json_response(200, view)


# ------------------------------------------------------------------ tools


def create_tool(services: Services, call: Call) -> Response:
    spec = call.body(HttpToolSpec)
    return json_response(201, services.catalog.put_tool(spec))


def _python_registry(services: Services) -> ToolRegistry:
    project = services.catalog.project_dir
    return load_registry([project / p for p in services.tool_modules])


def _python_tools(services: Services) -> list[m.ToolView]:
    registry = _python_registry(services)
    return [
        m.ToolView(name=s.name, kind="python", description=s.description, parameters=s.parameters)
        for s in (registry.get(n).spec() for n in registry.names())
    ]


def list_tools(services: Services, call: Call) -> Response:
    http = [
        m.ToolView(name=t.name, kind="http", description=t.description, parameters=t.parameters)
        for t in services.catalog.http_tools()
    ]
    items = sorted([*_python_tools(services), *http], key=lambda t: (t.name, t.kind))
    return json_response(200, m.ToolList(items=items))


def test_tool(services: Services, call: Call) -> Response:
    name = call.params["name"]
    body = call.body(m.ToolTest)
    registry = _python_registry(services)
    tool = registry.get(name) if name in registry else HttpTool(services.catalog.get_tool(name))
    try:
        result = tool.invoke(body.arguments)
    except ToolError as exc:
        raise ValidationFailed(exc.message, field=exc.field or "arguments") from None
    return json_response(200, m.ToolResult(name=name, result=result))
