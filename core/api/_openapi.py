"""OpenAPI 3.1 for the API, generated from the route registry and the pydantic models alone.

Nothing here lists routes or their facts: each route appears in /openapi.json exactly as it is
declared (method, path, summary, body and response models, status, query parameters, auth), so
the document cannot drift from what is served.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from agentfn.api._models import ErrorEnvelope
from agentfn.api._routing import ModelRef, Route

REF = "#/components/schemas/{model}"

ERRORS = {
    "400": "Malformed request",
    "401": "Missing or invalid API key",
    "403": "The key's role does not grant the permission this route needs",
    "404": "Not found",
    "405": "Method not allowed",
    "409": "Conflicts with the current state",
    "413": "Body too large",
    "415": "Unsupported content type",
    "422": "Validation failed",
    "429": "A quota of the tenant is used up; retry-after says when to come back",
}


def model_of(ref: ModelRef) -> type[BaseModel]:
    """The model a route names: the class itself, or what its function returns."""
    if isinstance(ref, type):
        return ref
    return ref()


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def operation(route: Route) -> dict[str, Any]:
    """The OpenAPI operation object for one route."""
    response = model_of(route.response) if route.response is not None else None
    error_ref = _ref(ErrorEnvelope)
    json_body = route.media == "application/json"
    schema = _ref(response) if response else {"type": "object" if json_body else "string"}
    op: dict[str, Any] = {
        "summary": route.summary,
        "operationId": route.operation_id,
        "responses": {
            str(route.status): {
                "description": "OK",
                "content": {route.media: {"schema": schema}},
            },
            **{
                code: {"description": text, "content": {"application/json": {"schema": error_ref}}}
                for code, text in ERRORS.items()
            },
        },
    }
    parameters: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in route.path_params
    ]
    parameters += [{"name": q.name, "in": "query", "schema": dict(q.schema)} for q in route.query]
    if parameters:
        op["parameters"] = parameters
    if route.body is not None:
        body = model_of(route.body)
        op["requestBody"] = {  # an empty body is the model's defaults, if it has them all
            "required": any(f.is_required() for f in body.model_fields.values()),
            "content": {"application/json": {"schema": _ref(body)}},
        }
    if route.text_body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {route.text_body: {"schema": {"type": "string"}}},
        }
    if route.permission is not None:
        op["security"] = [{"bearer": []}, {"apiKey": []}]
        op["x-agentfn-permission"] = route.permission.value
    return op


def document(routes: Iterable[Route], version: str) -> dict[str, Any]:
    routes = list(routes)
    models: set[type[BaseModel]] = {ErrorEnvelope}
    for route in routes:
        for ref in (route.body, route.response):
            if ref is not None:
                models.add(model_of(ref))
    _, defs = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda c: c.__name__)],
        ref_template=REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route)
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
