"""Gemini on Vertex AI: ``generateContent`` through the google-genai SDK in Vertex mode.

Credentials are Application Default Credentials — on Cloud Functions, the function's service
account from the metadata server; no key is stored or rotated. The project is the spec's, else
the credentials'. The SDK's own retries stay off (its default): ``agentfn.resilience`` owns
retries and the circuit breaker. 429 (``RESOURCE_EXHAUSTED``), 408, 5xx, timeouts and lost
connections are transient; 400/403/404 fail the step with Vertex AI's message.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from agentfn.errors import ModelError, TransientModelError
from agentfn.ports import ChatReply, ChatRequest, Message, ToolCall, ToolSpec, Usage

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
API_VERSION = "v1"
_TRANSIENT_STATUSES = frozenset({408, 429})
FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter"}


class VertexModel:
    """A ``Model`` backed by Vertex AI's ``models.generateContent``."""

    def __init__(
        self,
        model: str,
        *,
        location: str,
        project: str | None = None,
        timeout_s: float = 60.0,
        temperature: float | None = None,
    ) -> None:
        import google.auth  # lazy: only a function that calls Vertex AI pays for them
        from google import genai
        from google.genai import types

        self.name = model
        self.temperature = temperature
        self.timeout_s = timeout_s
        self._types: Any = types
        try:
            credentials, found_project = google.auth.default(scopes=[SCOPE])
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise ModelError(f"model {model!r}: no Google credentials: {exc}") from None
        self.project = project or found_project
        if not self.project:
            raise ModelError(
                f"model {model!r}: no Google Cloud project: set `project:` or run with "
                "credentials that name one"
            )
        self._client: Any = genai.Client(
            vertexai=True,
            project=self.project,
            location=location,
            credentials=credentials,
            http_options=types.HttpOptions(api_version=API_VERSION, timeout=int(timeout_s * 1000)),
        )

    def __repr__(self) -> str:
        return f"VertexModel(model={self.name!r}, project={self.project!r})"

    def chat(self, request: ChatRequest) -> ChatReply:
        types = self._types
        system = "\n\n".join(m.content or "" for m in request.messages if m.role == "system")
        config: dict[str, Any] = {}
        if system:
            config["system_instruction"] = system
        if request.tools:
            declarations = [_declaration(t, types) for t in request.tools]
            config["tools"] = [types.Tool(function_declarations=declarations)]
        temperature = request.temperature if request.temperature is not None else self.temperature
        if temperature is not None:
            config["temperature"] = temperature
        try:
            response = self._client.models.generate_content(
                model=request.model or self.name,
                contents=_contents(m for m in request.messages if m.role != "system"),
                config=types.GenerateContentConfig(**config),
            )
        except Exception as exc:  # the SDK's, httpx's and google-auth's errors: mapped here
            raise self._map_error(exc) from None
        return self._parse(response)

    def _map_error(self, exc: Exception) -> ModelError:
        from google.auth import exceptions as auth_errors
        from google.genai import errors

        where = f"model {self.name!r}"
        if isinstance(exc, errors.APIError):
            code = int(exc.code or 0)
            text = f"{where}: Vertex AI {code} {exc.status or ''}: {exc.message or exc}".strip()
            if code >= 500 or code in _TRANSIENT_STATUSES:
                return TransientModelError(text)
            return ModelError(text)
        transport = _transport_failure(exc)
        if transport == "timeout":
            return TransientModelError(f"{where}: request timed out after {self.timeout_s}s")
        if transport == "connection" or isinstance(exc, auth_errors.TransportError):
            return TransientModelError(f"{where}: cannot reach Vertex AI: {exc}")
        if isinstance(exc, auth_errors.RefreshError):
            kind = TransientModelError if getattr(exc, "retryable", False) else ModelError
            return kind(f"{where}: cannot get a Google access token: {exc}")
        return ModelError(f"{where}: {type(exc).__name__}: {exc}")

    def _parse(self, response: Any) -> ChatReply:
        candidates = response.candidates or []
        if not candidates:
            blocked = getattr(response.prompt_feedback, "block_reason", None)
            raise ModelError(f"model {self.name!r}: no candidates (blocked: {blocked})")
        candidate = candidates[0]
        parts = (candidate.content.parts if candidate.content else None) or []
        texts = [p.text for p in parts if p.text and not p.thought]
        calls = [
            ToolCall(
                id=p.function_call.id or f"call_{i}",
                name=str(p.function_call.name),
                arguments=dict(p.function_call.args or {}),
            )
            for i, p in enumerate(parts)
            if p.function_call is not None
        ]
        usage = response.usage_metadata
        reason = getattr(candidate.finish_reason, "value", None) or "STOP"
        return ChatReply(
            content="".join(texts) if texts else None,
            tool_calls=calls,
            usage=Usage(
                prompt_tokens=int(getattr(usage, "prompt_token_count", 0) or 0),
                completion_tokens=int(getattr(usage, "candidates_token_count", 0) or 0)
                + int(getattr(usage, "thoughts_token_count", 0) or 0),  # billed as output
            ),
            model=response.model_version or self.name,
            finish_reason="tool_calls" if calls else FINISH_REASONS.get(reason, reason.lower()),
        )


def _transport_failure(exc: Exception) -> str | None:
    """``timeout`` or ``connection`` for httpx's (or its fork httpx2's) transport errors."""
    for name in ("httpx", "httpx2"):
        module = sys.modules.get(name)
        if module is None:
            continue
        if isinstance(exc, module.TimeoutException):
            return "timeout"
        if isinstance(exc, module.TransportError):
            return "connection"
    return None


def _contents(messages: Iterable[Message]) -> list[Any]:
    """Our messages as Gemini's contents, which alternate ``user`` and ``model``: tool results
    become ``functionResponse`` parts of a user turn, consecutive ones merged into one. Typed
    objects, not dicts: the SDK sends a dict's keys as they are, unaliased."""
    from google.genai import types

    out: list[Any] = []
    for m in messages:
        role = "model" if m.role == "assistant" else "user"
        parts = _parts(m, types)
        if out and out[-1].role == role:
            out[-1].parts.extend(parts)
        else:
            out.append(types.Content(role=role, parts=parts))
    return out


def _parts(m: Message, types: Any) -> list[Any]:
    if m.role == "tool":
        if not m.name:
            raise ModelError("a tool message needs the tool's name for Gemini's functionResponse")
        response = types.FunctionResponse(
            id=m.tool_call_id, name=m.name, response={"output": m.content or ""}
        )
        return [types.Part(function_response=response)]
    parts = [types.Part(text=m.content)] if m.content else []
    for call in m.tool_calls:
        function_call = types.FunctionCall(id=call.id, name=call.name, args=call.arguments)
        parts.append(types.Part(function_call=function_call))
    return parts or [types.Part(text="")]


def _declaration(tool: ToolSpec, types: Any) -> Any:
    """Tools keep their full JSON schema (``parametersJsonSchema``), not Gemini's subset."""
    return types.FunctionDeclaration(
        name=tool.name,
        description=tool.description or tool.name,
        parameters_json_schema=tool.parameters or {"type": "object", "properties": {}},
    )
