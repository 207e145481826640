"""Requests and responses as every entry point hands them over, and the JSON on the wire.

The bottom layer of the API: it knows no routes, so every other module may import it, and it
loads pydantic only when a handler parses a body into a model (never on a /healthz cold start).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from agentfn.errors import AgentfnError, UnsupportedMediaType, ValidationFailed

if TYPE_CHECKING:
    from pydantic import BaseModel

MAX_BODY_BYTES = 1 << 20
JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")
BaseModelT = TypeVar("BaseModelT", bound="BaseModel")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    streams: bool = False
    """The entry point can stream a response (the local server): a handler may then add
    ``Response.stream``; elsewhere it answers with what it has, and the client comes back."""

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
    stream: Iterator[bytes] | None = None
    """More of the body, sent as it comes after ``body`` (only where ``Request.streams``)."""

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


def parse_json_body(request: Request, model: type[BaseModelT]) -> BaseModelT:
    """The request's JSON object body validated by ``model`` (an empty body is ``{}``)."""
    from pydantic import ValidationError  # loaded already: ``model`` is a pydantic model

    from agentfn.documents import loads_json  # bodies only: not on a /healthz cold start

    raw = request.body or b"{}"
    if request.body and request.content_type not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"send JSON with content-type application/json (got {request.content_type or 'none'})",
            field="content-type",
        )
    data = loads_json(raw)
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object", field="body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise ValidationFailed(f"{where}: {message}", field=where) from None
