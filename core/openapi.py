"""OpenAPI 3.1 for the v1 API, generated from the same pydantic models that validate requests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from agentfn import api_models as m
from agentfn.agents import AgentSpec
from agentfn.http_tools import HttpToolSpec

if TYPE_CHECKING:
    from agentfn.api import Route

REF = "#/components/schemas/{model}"

# route template -> (summary, request model, success status, response model)
OPERATIONS: dict[
    tuple[str, str], tuple[str, type[BaseModel] | None, int, type[BaseModel] | None]
] = {
    ("GET", "/healthz"): ("Liveness check", None, 200, m.Health),
    ("GET", "/openapi.json"): ("This document", None, 200, None),
    ("POST", "/v1/runs"): ("Start a run of a stored workflow", m.CreateRun, 202, m.RunSummary),
    ("GET", "/v1/runs"): ("List runs, newest first", None, 200, m.RunPage),
    ("GET", "/v1/runs/{run_id}"): ("A run with its steps, tokens and cost", None, 200, m.RunView),
    ("POST", "/v1/runs/{run_id}/cancel"): ("Cancel a run", None, 200, m.RunSummary),
    ("POST", "/v1/runs/{run_id}/replay"): ("Replay a run", m.ReplayRun, 202, m.RunSummary),
    ("POST", "/v1/runs/{run_id}/signals/{name}"): (
        "Resume a run parked on a wait node",
        m.Signal,
        202,
        m.RunSummary,
    ),
    ("GET", "/v1/agents/{name}"): ("An agent", None, 200, AgentSpec),
    ("PUT", "/v1/agents/{name}"): ("Create or replace an agent", AgentSpec, 200, AgentSpec),
    ("GET", "/v1/workflows/{name}"): ("A workflow blueprint", None, 200, m.WorkflowView),
    ("PUT", "/v1/workflows/{name}"): (
        "Create or replace a workflow (YAML body, validated)",
        None,
        200,
        m.WorkflowView,
    ),
    ("POST", "/v1/tools"): ("Register a declarative HTTP tool", HttpToolSpec, 201, HttpToolSpec),
    ("GET", "/v1/tools"): ("List tools", None, 200, m.ToolList),
    ("POST", "/v1/tools/{name}/test"): ("Call a tool once", m.ToolTest, 200, m.ToolResult),
}

ERRORS = {
    "400": "Malformed request",
    "401": "Missing or invalid API key",
    "404": "Not found",
    "405": "Method not allowed",
    "409": "Conflicts with the current state",
    "413": "Body too large",
    "415": "Unsupported content type",
    "422": "Validation failed",
}


def document(routes: list[Route], version: str) -> dict[str, Any]:
    models: set[type[BaseModel]] = {m.ErrorEnvelope}
    for _, request, _, response in OPERATIONS.values():
        if response is not None:
            models.add(response)
        if request is not None:
            models.add(request)
    _, defs = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda c: c.__name__)],
        ref_template=REF,
    )
    error_ref = {"$ref": REF.format(model="ErrorEnvelope")}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        summary, request, status, response = OPERATIONS[(route.method, route.template)]
        op: dict[str, Any] = {
            "summary": summary,
            "operationId": route.target,
            "responses": {
                str(status): {
                    "description": "OK",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": REF.format(model=response.__name__)}
                            if response is not None
                            else {"type": "object"}
                        }
                    },
                },
                **{
                    code: {
                        "description": text,
                        "content": {"application/json": {"schema": error_ref}},
                    }
                    for code, text in ERRORS.items()
                },
            },
        }
        params = [p.strip("{}") for p in route.template.split("/") if p.startswith("{")]
        if params:
            op["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            ]
        if route.template == "/v1/runs" and route.method == "GET":
            op["parameters"] = [
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                },
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            ]
        if request is not None:
            op["requestBody"] = {
                "required": False,
                "content": {
                    "application/json": {"schema": {"$ref": REF.format(model=request.__name__)}}
                },
            }
        if route.template == "/v1/workflows/{name}" and route.method == "PUT":
            op["requestBody"] = {
                "required": True,
                "content": {"application/yaml": {"schema": {"type": "string"}}},
            }
        if not route.public:
            op["security"] = [{"bearer": []}, {"apiKey": []}]
        paths.setdefault(route.template, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "agentfn", "version": version},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
    }
