"""The cloud-neutral HTTP API: one request/response layer behind every entry point.

Handlers (Lambda, Cloud Functions, Azure Functions, the local server) only translate their
provider's event into a :class:`Request` and the :class:`Response` back. Routing,
authentication, validation, error mapping and the JSON bodies all live here, so the same
request gives the same status and body on every cloud.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from core import api_models as m
from core.agents import AgentSpec
from core.auth import Authenticator, Principal
from core.catalog import Catalog
from core.engine import Engine
from core.errors import (
    AgentfnError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ToolError,
    UnsupportedMediaType,
    UserError,
    ValidationFailed,
)
from core.http_tools import HttpTool, HttpToolSpec
from core.tools import ToolRegistry, load_registry

VERSION = "0.1.0"
MAX_BODY_BYTES = 1 << 20
JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")
_JSON = TypeAdapter(Any)
BaseModelT = TypeVar("BaseModelT", bound=BaseModel)
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


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json")
    body = json.dumps(_JSON.dump_python(payload, mode="json"), separators=(",", ":")).encode()
    return Response(status, body, {"content-type": "application/json", **(headers or {})})


def error_response(exc: AgentfnError, headers: Mapping[str, str] | None = None) -> Response:
    envelope = m.ErrorEnvelope(
        error=m.ErrorBody(code=exc.code, message=exc.message, field=exc.field)
    )
    return json_response(exc.status, envelope, headers)


Handler = Callable[["Call"], Response]


@dataclass
class Route:
    method: str
    template: str
    handler: Handler
    public: bool = False
    pattern: re.Pattern[str] = field(init=False)

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
        return parse_json_body(self.request, model)


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


class Api:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.routes = [
            Route("GET", "/healthz", self.health, public=True),
            Route("GET", "/openapi.json", self.openapi, public=True),
            Route("POST", "/v1/runs", self.create_run),
            Route("GET", "/v1/runs", self.list_runs),
            Route("GET", "/v1/runs/{run_id}", self.get_run),
            Route("POST", "/v1/runs/{run_id}/cancel", self.cancel_run),
            Route("POST", "/v1/runs/{run_id}/replay", self.replay_run),
            Route("POST", "/v1/runs/{run_id}/signals/{name}", self.signal_run),
            Route("GET", "/v1/agents/{name}", self.get_agent),
            Route("PUT", "/v1/agents/{name}", self.put_agent),
            Route("GET", "/v1/workflows/{name}", self.get_workflow),
            Route("PUT", "/v1/workflows/{name}", self.put_workflow),
            Route("POST", "/v1/tools", self.create_tool),
            Route("GET", "/v1/tools", self.list_tools),
            Route("POST", "/v1/tools/{name}/test", self.test_tool),
        ]

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
        for route in self.routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            if route.method != request.method:
                allowed.append(route.method)
                continue
            principal = (
                None if route.public else self.services.authenticator.authenticate(request.headers)
            )
            return route.handler(Call(request, match.groupdict(), principal, correlation_id))
        if allowed:
            exc = MethodNotAllowed(
                f"{request.method} is not allowed on {path}; use {', '.join(sorted(allowed))}"
            )
            exc.field = ", ".join(sorted(allowed))
            raise exc
        raise NotFound(f"no route for {request.method} {path}", field="path")

    # ------------------------------------------------------------------ meta

    def health(self, call: Call) -> Response:
        return json_response(200, m.Health(status="ok", version=VERSION))

    def openapi(self, call: Call) -> Response:
        from core.openapi import document

        return json_response(200, document(self.routes, VERSION))

    # ------------------------------------------------------------------ runs

    def create_run(self, call: Call) -> Response:
        body = call.body(m.CreateRun)
        loaded = self.services.catalog.load_workflow(body.workflow)
        try:
            run = self.services.engine.start(
                loaded, body.input, correlation_id=call.correlation_id, priority=body.priority
            )
        except UserError as exc:
            raise ValidationFailed(exc.message, field=exc.field) from None
        return json_response(202, m.RunSummary.of(run), {"location": f"/v1/runs/{run.id}"})

    def list_runs(self, call: Call) -> Response:
        query = call.request.query
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            raise ValidationFailed("limit must be an integer", field="limit") from None
        if not 1 <= limit <= 200:
            raise ValidationFailed("limit must be between 1 and 200", field="limit")
        cursor = query.get("cursor") or None
        if cursor is not None and not re.fullmatch(
            r"index/runs/[0-9]{13}_run_[0-9a-f]{23}", cursor
        ):
            raise ValidationFailed("cursor is not one this API returned", field="cursor")
        runs, next_cursor = self.services.engine.store.list_runs(cursor=cursor, limit=limit)
        page = m.RunPage(items=[m.RunSummary.of(r) for r in runs], next_cursor=next_cursor)
        return json_response(200, page)

    def get_run(self, call: Call) -> Response:
        run = self.services.engine.store.get(call.params["run_id"])
        steps = list(self.services.engine.store.steps(run.id))
        return json_response(200, m.RunView.full(run, steps))

    def cancel_run(self, call: Call) -> Response:
        run = self.services.engine.cancel(call.params["run_id"])
        return json_response(200, m.RunSummary.of(run))

    def replay_run(self, call: Call) -> Response:
        body = call.body(m.ReplayRun)
        run = self.services.engine.replay(call.params["run_id"], live=body.live)
        return json_response(202, m.RunSummary.of(run), {"location": f"/v1/runs/{run.id}"})

    def signal_run(self, call: Call) -> Response:
        body = call.body(m.Signal)
        run = self.services.engine.signal(call.params["run_id"], call.params["name"], body.payload)
        return json_response(202, m.RunSummary.of(run))

    # ------------------------------------------------------------------ catalog

    def get_agent(self, call: Call) -> Response:
        return json_response(200, self.services.catalog.get_agent(call.params["name"]))

    def put_agent(self, call: Call) -> Response:
        spec = call.body(AgentSpec)
        return json_response(200, self.services.catalog.put_agent(call.params["name"], spec))

    def get_workflow(self, call: Call) -> Response:
        name = call.params["name"]
        text = self.services.catalog.workflow_text(name)
        bp = self.services.catalog.load_workflow(name).blueprint
        view = m.WorkflowView(
            name=bp.name,
            description=bp.description,
            nodes=len(bp.nodes),
            edges=len(bp.edges),
            inputs={k: v.model_dump() for k, v in bp.inputs.items()},
            source=text,
        )
        return json_response(200, view)

    def put_workflow(self, call: Call) -> Response:
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
        loaded = self.services.catalog.put_workflow(call.params["name"], text)
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

    def create_tool(self, call: Call) -> Response:
        spec = call.body(HttpToolSpec)
        return json_response(201, self.services.catalog.put_tool(spec))

    def _python_registry(self) -> ToolRegistry:
        project = self.services.catalog.project_dir
        return load_registry([project / p for p in self.services.tool_modules])

    def _python_tools(self) -> list[m.ToolView]:
        registry = self._python_registry()
        return [
            m.ToolView(
                name=s.name, kind="python", description=s.description, parameters=s.parameters
            )
            for s in (registry.get(n).spec() for n in registry.names())
        ]

    def list_tools(self, call: Call) -> Response:
        http = [
            m.ToolView(name=t.name, kind="http", description=t.description, parameters=t.parameters)
            for t in self.services.catalog.http_tools()
        ]
        items = sorted([*self._python_tools(), *http], key=lambda t: (t.name, t.kind))
        return json_response(200, m.ToolList(items=items))

    def test_tool(self, call: Call) -> Response:
        name = call.params["name"]
        body = call.body(m.ToolTest)
        registry = self._python_registry()
        tool = (
            registry.get(name)
            if name in registry
            else HttpTool(self.services.catalog.get_tool(name))
        )
        try:
            result = tool.invoke(body.arguments)
        except ToolError as exc:
            raise ValidationFailed(exc.message, field=exc.field or "arguments") from None
        return json_response(200, m.ToolResult(name=name, result=result))
