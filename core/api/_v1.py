"""The /v1 routes (runs, collaborations, catalog, tools), each declared once, by the decorator
on its handler.

The registry imports this module on the first request under /v1/ (and when the OpenAPI
document is built), so a cold start answering /healthz does not pay for pydantic, the run and
workflow models or the tool registry.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from agentfn.agents import AgentSpec
from agentfn.api import _models as m, _sse as sse
from agentfn.api._http import JSON_TYPES, YAML_TYPES, Response, json_response
from agentfn.api._routing import CURSOR, LIMIT, Call, Routes, Services
from agentfn.collaboration import (
    CollaborationView,
    agent_loads,
    collaboration_blueprint,
    collaboration_view,
)
from agentfn.collaboration.planner import log_planning, plan_task
from agentfn.collaboration.status import changed_since, progress_cursor
from agentfn.documents import loads_json
from agentfn.errors import ToolError, UnsupportedMediaType, UserError, ValidationFailed
from agentfn.http_tools import HttpTool, HttpToolSpec
from agentfn.replay import ReplayChanges, RunDiff, diff_runs
from agentfn.roles import Permission
from agentfn.threads import Thread
from agentfn.tools import ToolRegistry, load_registry

if TYPE_CHECKING:
    from agentfn.workflows import Blueprint

routes = Routes()


# ---------------------------------------------------------------------- runs


@routes.route(
    "POST",
    "/v1/runs",
    permission=Permission.run,
    summary="Start a run of a stored workflow",
    status=202,
    body=m.CreateRun,
    response=m.RunSummary,
)
def create_run(services: Services, call: Call) -> Response:
    body = call.body(m.CreateRun)
    loaded = services.catalog.load_workflow(body.workflow)
    try:
        run = services.engine.start(
            loaded,
            body.input,
            correlation_id=call.correlation_id,
            priority=body.priority,
            actor=call.actor,
            thread=body.thread,
            thread_ttl_s=body.thread_ttl_s,
        )
    except UserError as exc:
        raise ValidationFailed(exc.message, field=exc.field) from None
    return json_response(202, m.RunSummary.of(run), {"location": f"/v1/runs/{run.id}"})


@routes.route(
    "GET",
    "/v1/runs",
    permission=Permission.read,
    summary="List runs, newest first",
    response=m.RunPage,
    query=(LIMIT, CURSOR),
)
def list_runs(services: Services, call: Call) -> Response:
    limit = call.limit()
    cursor = call.request.query.get("cursor") or None
    if cursor is not None and not re.fullmatch(r"index/runs/[0-9]{13}_run_[0-9a-f]{23}", cursor):
        raise ValidationFailed("cursor is not one this API returned", field="cursor")
    runs, next_cursor = services.engine.runs(cursor=cursor, limit=limit)
    page = m.RunPage(items=[m.RunSummary.of(r) for r in runs], next_cursor=next_cursor)
    return json_response(200, page)


@routes.route(
    "GET",
    "/v1/runs/{run_id}",
    permission=Permission.read,
    summary="A run with its steps, tokens and cost",
    response=m.RunView,
)
def get_run(services: Services, call: Call) -> Response:
    store = services.engine.store
    run = services.engine.run(call.params["run_id"])
    steps = list(store.steps(run.id))
    blueprint = store.load_blueprint(run.blueprint_key).blueprint
    return json_response(200, m.RunView.full(run, steps, blueprint))


@routes.route(
    "POST",
    "/v1/runs/{run_id}/cancel",
    permission=Permission.run,
    summary="Cancel a run",
    response=m.RunSummary,
)
def cancel_run(services: Services, call: Call) -> Response:
    run = services.engine.cancel(call.params["run_id"])
    return json_response(200, m.RunSummary.of(run))


@routes.route(
    "POST",
    "/v1/runs/{run_id}/replay",
    permission=Permission.run,
    summary="Replay a run",
    status=202,
    body=m.ReplayRun,
    response=m.RunSummary,
)
def replay_run(services: Services, call: Call) -> Response:
    body = call.body(m.ReplayRun)
    changes = ReplayChanges.model_validate(body.model_dump(exclude={"live"}))
    run = services.engine.replay(
        call.params["run_id"], live=body.live, actor=call.actor, changes=changes
    )
    return json_response(202, m.RunSummary.of(run), {"location": f"/v1/runs/{run.id}"})


@routes.route(
    "GET",
    "/v1/runs/{run_id}/diff/{other_id}",
    permission=Permission.read,
    summary="What differs between two runs (a run and its replay): every node's output, every "
    "step's status, tokens, cost and time",
    response=RunDiff,
)
def diff_run(services: Services, call: Call) -> Response:
    engine = services.engine
    for run_id in (call.params["run_id"], call.params["other_id"]):
        engine.run(run_id)  # both must still stand (see Engine.run)
    return json_response(
        200, diff_runs(engine.store, call.params["run_id"], call.params["other_id"])
    )


@routes.route(
    "POST",
    "/v1/runs/{run_id}/signals/{name}",
    permission=Permission.run,
    summary="Resume a run parked on a wait node",
    status=202,
    body=m.Signal,
    response=m.RunSummary,
)
def signal_run(services: Services, call: Call) -> Response:
    body = call.body(m.Signal)
    run = services.engine.signal(call.params["run_id"], call.params["name"], body.payload)
    return json_response(202, m.RunSummary.of(run))


# ------------------------------------------------------------------ threads


@routes.route(
    "GET",
    "/v1/threads/{thread_id}",
    permission=Permission.read,
    summary="A conversation thread: its messages, the runs that added them, when it expires",
    response=Thread,
)
def get_thread(services: Services, call: Call) -> Response:
    return json_response(200, services.engine.conversations.get(call.params["thread_id"]))


@routes.route(
    "DELETE",
    "/v1/threads/{thread_id}",
    permission=Permission.run,
    summary="Delete a thread everywhere: its messages, the runs that continued it (records, "
    "steps, prompt log), the facts remembered in it (409 while a run on it is going)",
    response=m.ThreadDeleted,
)
def delete_thread(services: Services, call: Call) -> Response:
    thread_id = call.params["thread_id"]
    runs = services.engine.conversations.delete(thread_id)
    return json_response(200, m.ThreadDeleted(id=thread_id, runs=runs))


# ------------------------------------------------------------ collaborations


@routes.route(
    "POST",
    "/v1/collaborations",
    permission=Permission.run,
    summary="Start a collaboration: a plan of subtasks run by a stored team's agents",
    status=202,
    body=m.CreateCollaboration,
    response=CollaborationView,
)
def create_collaboration(services: Services, call: Call) -> Response:
    body = call.body(m.CreateCollaboration)
    team = services.catalog.load_workflow(body.team)
    engine = services.engine
    planning = None
    plan = body.plan
    if body.task is not None:
        planning = plan_task(body.task, team, engine.model_factory)
        plan = planning.plan
    assert plan is not None  # the model holds a plan or a task
    about = planning.summary() if planning is not None else None
    loaded, given = collaboration_blueprint(plan, team, name=body.name, planner=about)
    try:
        run = engine.start(
            loaded,
            given,
            correlation_id=call.correlation_id,
            priority=body.priority,
            actor=call.actor,
        )
    except UserError as exc:
        raise ValidationFailed(exc.message, field=exc.field) from None
    if planning is not None:
        log_planning(engine.prompts, run.id, planning, at=run.created_at)
    view = collaboration_view(services.engine.store, run.id)
    return json_response(202, view, {"location": f"/v1/collaborations/{run.id}"})


@routes.route(
    "GET",
    "/v1/collaborations/{collaboration_id}",
    permission=Permission.read,
    summary="A collaboration: its status and every subtask with agent, attempts, tokens, cost "
    "and timing",
    response=CollaborationView,
)
def get_collaboration(services: Services, call: Call) -> Response:
    view = collaboration_view(services.engine.store, call.params["collaboration_id"])
    return json_response(200, view)


@routes.route(
    "GET",
    "/v1/collaborations/{collaboration_id}/agents",
    permission=Permission.read,
    summary="Which agent of the team did what, with its load",
    response=m.AgentLoadList,
)
def get_collaboration_agents(services: Services, call: Call) -> Response:
    store = services.engine.store
    view = collaboration_view(store, call.params["collaboration_id"])
    return json_response(200, m.AgentLoadList(items=agent_loads(store, view)))


@routes.route(
    "GET",
    "/v1/collaborations/{collaboration_id}/progress",
    permission=Permission.read,
    summary="Poll a collaboration's progress: the subtasks that changed since a cursor",
    response=m.CollaborationProgress,
    query=(CURSOR,),
)
def get_collaboration_progress(services: Services, call: Call) -> Response:
    view = collaboration_view(services.engine.store, call.params["collaboration_id"])
    return json_response(200, progress_of(view, call.request.query.get("cursor") or None))


@routes.route(
    "GET",
    "/v1/collaborations/{collaboration_id}/events",
    permission=Permission.read,
    summary="A collaboration's progress as server-sent events: each subtask change, then the "
    "progress with its cursor as the event id (Last-Event-ID resumes); streamed where the "
    "entry point can, one batch per request elsewhere",
    query=(CURSOR,),
    media="text/event-stream",
)
def get_collaboration_events(services: Services, call: Call) -> Response:
    store = services.engine.store
    cid = call.params["collaboration_id"]
    headers = call.request.headers
    cursor = headers.get("last-event-id") or call.request.query.get("cursor") or None
    first = progress_of(collaboration_view(store, cid), cursor)

    def poll(since: str) -> m.CollaborationProgress:
        return progress_of(collaboration_view(store, cid), since)

    stream = sse.follow(poll, first) if call.request.streams and not first.done else None
    sse_headers = {"content-type": "text/event-stream", "cache-control": "no-cache"}
    return Response(200, sse.opening(first), sse_headers, stream=stream)


def progress_of(view: CollaborationView, cursor: str | None) -> m.CollaborationProgress:
    return m.CollaborationProgress(
        id=view.id,
        status=view.status,
        progress=view.progress,
        changed=changed_since(view, cursor),
        cursor=progress_cursor(view),
        done=view.status not in ("queued", "running", "waiting"),
    )


# ------------------------------------------------------------------ catalog


@routes.route(
    "GET", "/v1/agents/{name}", permission=Permission.read, summary="An agent", response=AgentSpec
)
def get_agent(services: Services, call: Call) -> Response:
    return json_response(200, services.catalog.get_agent(call.params["name"]))


@routes.route(
    "PUT",
    "/v1/agents/{name}",
    permission=Permission.register,
    summary="Create or replace an agent",
    body=AgentSpec,
    response=AgentSpec,
)
def put_agent(services: Services, call: Call) -> Response:
    spec = call.body(AgentSpec)
    return json_response(200, services.catalog.put_agent(call.params["name"], spec))


@routes.route(
    "POST",
    "/v1/agents/{name}/runs",
    permission=Permission.run,
    summary="Ask a stored agent a prompt, on the models of a stored workflow",
    status=202,
    body=m.AgentRun,
    response=m.RunSummary,
)
def run_agent(services: Services, call: Call) -> Response:
    body = call.body(m.AgentRun)
    loaded = services.catalog.agent_workflow(call.params["name"], body.models_from)
    run = services.engine.start(
        loaded,
        {"prompt": body.prompt},
        correlation_id=call.correlation_id,
        priority=body.priority,
        actor=call.actor,
        thread=body.thread,
        thread_ttl_s=body.thread_ttl_s,
    )
    return json_response(202, m.RunSummary.of(run), {"location": f"/v1/runs/{run.id}"})


@routes.route(
    "GET",
    "/v1/workflows",
    permission=Permission.read,
    summary="The stored workflows' names",
    response=m.NameList,
)
def list_workflows(services: Services, call: Call) -> Response:
    return json_response(200, m.NameList(items=services.catalog.workflow_names()))


@routes.route(
    "GET",
    "/v1/workflows/{name}",
    permission=Permission.read,
    summary="A workflow blueprint",
    response=m.WorkflowView,
)
def get_workflow(services: Services, call: Call) -> Response:
    name = call.params["name"]
    text = services.catalog.workflow_text(name)
    return json_response(200, _workflow_view(services.catalog.load_workflow(name).blueprint, text))


@routes.route(
    "PUT",
    "/v1/workflows/{name}",
    permission=Permission.register,
    summary="Create or replace a workflow (YAML body, validated)",
    text_body="application/yaml",
    response=m.WorkflowView,
)
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
        loads_json(text)  # JSON is YAML, but say so clearly when it is broken JSON
    loaded = services.catalog.put_workflow(call.params["name"], text)
    return json_response(200, _workflow_view(loaded.blueprint, text))


def _workflow_view(bp: Blueprint, text: str) -> m.WorkflowView:
    return m.WorkflowView(
        name=bp.name,
        description=bp.description,
        nodes=len(bp.nodes),
        edges=len(bp.edges),
        inputs={k: v.model_dump() for k, v in bp.inputs.items()},
        source=text,
    )


# ------------------------------------------------------------------ tools


@routes.route(
    "POST",
    "/v1/tools",
    permission=Permission.register,
    summary="Register a declarative HTTP tool",
    status=201,
    body=HttpToolSpec,
    response=HttpToolSpec,
)
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


@routes.route(
    "GET", "/v1/tools", permission=Permission.read, summary="List tools", response=m.ToolList
)
def list_tools(services: Services, call: Call) -> Response:
    http = [
        m.ToolView(name=t.name, kind="http", description=t.description, parameters=t.parameters)
        for t in services.catalog.http_tools()
    ]
    items = sorted([*_python_tools(services), *http], key=lambda t: (t.name, t.kind))
    return json_response(200, m.ToolList(items=items))


@routes.route(
    "POST",
    "/v1/tools/{name}/test",
    permission=Permission.run,
    summary="Call a tool once",
    body=m.ToolTest,
    response=m.ToolResult,
)
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
