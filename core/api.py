"""The cloud-neutral HTTP API: one request/response layer behind every entry point.

Handlers (Lambda, Cloud Functions, Azure Functions, the local server) only translate their
provider's event into a :class:`Request` and the :class:`Response` back. Routing,
authentication, validation, error mapping and the JSON bodies all live here, so the same
request gives the same status and body on every cloud.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from agentfn import __version__
from agentfn.auth import Authenticator, Principal
from agentfn.errors import (
    AgentfnError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from agentfn.catalog import Catalog
    from agentfn.engine import Engine

MAX_BODY_BYTES = 1 << 20
JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")
BaseModelT = TypeVar("BaseModelT", bound="BaseModel")
log = logging.getLogger("agentfn.api")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        self.headers = {k.lower(): v for k, v in self.headers.items()}

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


def _jsonable(value: Any) -> Any:
    """What json.dumps cannot encode itself: pydantic models, sets."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), default=_jsonable).encode()
    return Response(status, body, {"content-type": "application/json", **(headers or {})})


def error_response(exc: AgentfnError, headers: Mapping[str, str] | None = None) -> Response:
    envelope = {"error": {"code": exc.code, "message": exc.message, "field": exc.field}}
    return json_response(exc.status, envelope, headers)


Handler = Callable[["Services", "Call"], Response]


@dataclass
class Route:
    """``target`` names the handler function: in agentfn.api_v1, or here for public routes."""

    method: str
    template: str
    target: str
    public: bool = False
    pattern: re.Pattern[str] = field(init=False)

    def handler(self) -> Handler:
        module = sys.modules[__name__] if self.public else importlib.import_module("agentfn.api_v1")
        fn: Handler = getattr(module, self.target)
        return fn

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[A-Za-z0-9_.~-]{1,128})", self.template)
        self.pattern = re.compile(f"^{regex}$")


@dataclass
class Call:
    """One request being served: the request, its path parameters and who is calling."""

    request: Request
    params: dict[str, str]
    principal: Principal | None
    correlation_id: str

    def body(self, model: type[BaseModelT]) -> BaseModelT:
        from agentfn.api_v1 import parse_json_body

        return parse_json_body(self.request, model)


class Services(Protocol):
    """What the API needs; built lazily so /healthz never pays for storage or SDK imports."""

    @property
    def engine(self) -> Engine: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def authenticator(self) -> Authenticator: ...

    @property
    def tool_modules(self) -> list[str]: ...


ROUTES = [
    Route("GET", "/healthz", "health", public=True),
    Route("GET", "/openapi.json", "openapi", public=True),
    Route("POST", "/v1/runs", "create_run"),
    Route("GET", "/v1/runs", "list_runs"),
    Route("GET", "/v1/runs/{run_id}", "get_run"),
    Route("POST", "/v1/runs/{run_id}/cancel", "cancel_run"),
    Route("POST", "/v1/runs/{run_id}/replay", "replay_run"),
    Route("POST", "/v1/runs/{run_id}/signals/{name}", "signal_run"),
    Route("GET", "/v1/agents/{name}", "get_agent"),
    Route("PUT", "/v1/agents/{name}", "put_agent"),
    Route("GET", "/v1/workflows/{name}", "get_workflow"),
    Route("PUT", "/v1/workflows/{name}", "put_workflow"),
    Route("POST", "/v1/tools", "create_tool"),
    Route("GET", "/v1/tools", "list_tools"),
    Route("POST", "/v1/tools/{name}/test", "test_tool"),
]


class Api:
    def __init__(self, services: Services) -> None:
        self.services = services

    # ------------------------------------------------------------------ dispatch

    def handle(self, request: Request) -> Response:
        correlation_id = request.headers.get("x-correlation-id") or uuid.uuid4().hex
        headers = {"x-correlation-id": correlation_id}
        try:
            response = self._dispatch(request, correlation_id)
        except MethodNotAllowed as exc:
            return error_response(exc, {**headers, "allow": exc.field or ""})
        except AgentfnError as exc:
            return error_response(exc, headers)
        except Exception:  # a bug or an outage: log it, never leak its details to the caller
            log.exception("unhandled error", extra={"correlation_id": correlation_id})
            return error_response(InternalError("internal error"), headers)
        response.headers.update(headers)
        return response

    def _dispatch(self, request: Request, correlation_id: str) -> Response:
        if len(request.body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"body exceeds the limit of {MAX_BODY_BYTES} bytes", field="body")
        path = request.path.rstrip("/") or "/"
        allowed = []
        for route in ROUTES:
            match = route.pattern.match(path)
            if match is None:
                continue
            if route.method != request.method:
                allowed.append(route.method)
                continue
            principal = (
                None if route.public else self.services.authenticator.authenticate(request.headers)
            )
            return route.handler()(
                self.services, Call(request, match.groupdict(), principal, correlation_id)
            )
        if allowed:
            exc = MethodNotAllowed(
                f"{request.method} is not allowed on {path}; use {', '.join(sorted(allowed))}"
            )
            exc.field = ", ".join(sorted(allowed))
            raise exc
        raise NotFound(f"no route for {request.method} {path}", field="path")


def health(services: Services, call: Call) -> Response:
    return json_response(200, {"status": "ok", "version": __version__})


def openapi(services: Services, call: Call) -> Response:
    from agentfn.openapi import document

    return json_response(200, document(ROUTES, __version__))
