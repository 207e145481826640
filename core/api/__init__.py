"""The cloud-neutral HTTP API: one request/response layer behind every entry point.

Handlers (Lambda, Cloud Functions, Azure Functions, the local server) only translate their
provider's event into a :class:`Request` and the :class:`Response` back. Routing,
authentication, the role check, validation, error mapping and the JSON bodies all live here,
so the same request gives the same status and body on every cloud.

Each route is declared once, by a decorator on its handler; the OpenAPI document is generated
from those declarations. The modules, each importing only those listed before it:

- ``_http``: Request, Response, JSON bodies and error envelopes, body parsing
- ``_routing``: Route, the ``Routes`` groups and their decorator, the ``Registry``
- ``_models``: pydantic bodies and responses (the first module here that imports pydantic)
- ``_openapi``: the OpenAPI document, built from the registry
- ``_v1``: the /v1 handlers, imported by the first request under /v1/
- ``_admin``: the tenant admin's /v1 handlers (API keys, audit log), mounted beside ``_v1``
- ``_console``: the web console at ``/`` and its assets (public; the page asks for a key)
- ``_public``: /healthz and /openapi.json, light enough for every cold start
- ``_app``: ``Api`` and ``REGISTRY``, which mounts the public and the /v1 routes
"""

from __future__ import annotations

from agentfn.api._app import REGISTRY, Api
from agentfn.api._http import (
    JSON_TYPES,
    MAX_BODY_BYTES,
    YAML_TYPES,
    Request,
    Response,
    error_response,
    json_response,
)
from agentfn.api._routing import Call, Handler, QueryParam, Registry, Route, Routes, Services

__all__ = [
    "JSON_TYPES",
    "MAX_BODY_BYTES",
    "REGISTRY",
    "YAML_TYPES",
    "Api",
    "Call",
    "Handler",
    "QueryParam",
    "Registry",
    "Request",
    "Response",
    "Route",
    "Routes",
    "Services",
    "error_response",
    "json_response",
]
