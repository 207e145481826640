"""The routes every function instance answers without authentication: /healthz, /openapi.json.

Imported on every cold start, so it stays light: no pydantic, no /v1 handlers. The OpenAPI
builder and the models load only when the document (or its Health schema) is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentfn import __version__
from agentfn.api._http import Response, json_response
from agentfn.api._routing import Call, Routes, Services

if TYPE_CHECKING:
    from pydantic import BaseModel

routes = Routes()


def _health_model() -> type[BaseModel]:
    from agentfn.api._models import Health  # for the document only: /healthz returns a dict

    return Health


@routes.route("GET", "/healthz", public=True, summary="Liveness check", response=_health_model)
def health(services: Services, call: Call) -> Response:
    components = services.health()
    healthy = all(c.get("ok", False) for c in components.values())
    body: dict[str, object] = {"status": "ok" if healthy else "degraded", "version": __version__}
    body.update(components)
    return json_response(200 if healthy else 503, body)


@routes.route("GET", "/openapi.json", public=True, summary="This document")
def openapi(services: Services, call: Call) -> Response:
    from agentfn.api._openapi import document

    return json_response(200, document(call.registry.routes(), __version__))
