"""Chat Completions adapter on the official ``openai`` SDK.

One adapter covers OpenAI, Azure OpenAI's v1 endpoint, vLLM and Ollama: they differ only in
``base_url`` and key. The SDK is imported inside ``__init__`` because importing it costs a
serverless cold start even for functions that never call a model. SDK retries are off:
``agentfn.resilience.ResilientModel`` owns retries and the circuit breaker.
"""

from __future__ import annotations

import json
from typing import Any

from agentfn.errors import ModelError, TransientModelError
from agentfn.ports import ChatReply, ChatRequest, Message, ToolCall, ToolSpec, Usage

_TRANSIENT_STATUSES = frozenset({408, 429})


class OpenAIChatModel:
    """A ``Model`` backed by ``POST {base_url}/chat/completions``."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        temperature: float | None = None,
    ) -> None:
        import openai  # lazy: see module docstring

        self.name = model
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.temperature = temperature
        self._openai: Any = openai
        self._api_key = api_key  # kept only to scrub it from error messages
        self._client: Any = self._connect(openai)

    def _connect(self, openai: Any) -> Any:
        """The SDK client: the one thing a variant of the API (Azure's) does differently."""
        return openai.OpenAI(
            api_key=self._api_key, base_url=self.base_url, timeout=self.timeout_s, max_retries=0
        )

    def _failures(self) -> tuple[type[Exception], ...]:
        """What a call may raise that ``_map_error`` turns into a ``ModelError``."""
        return (self._openai.OpenAIError,)

    def __repr__(self) -> str:
        return f"OpenAIChatModel(model={self.name!r}, base_url={self.base_url!r})"

    def chat(self, request: ChatRequest) -> ChatReply:
        kwargs: dict[str, Any] = {
            "model": request.model or self.name,
            "messages": [_message_to_api(m) for m in request.messages],
        }
        if request.tools:
            kwargs["tools"] = [_tool_to_api(t) for t in request.tools]
        temperature = request.temperature if request.temperature is not None else self.temperature
        if temperature is not None:
            kwargs["temperature"] = temperature
        try:
            response = self._client.chat.completions.create(**kwargs)
        except self._failures() as exc:
            raise self._map_error(exc) from None
        return self._parse(response)

    # ------------------------------------------------------------------ errors

    def _scrub(self, text: str) -> str:
        """Servers sometimes echo the key back ("Incorrect API key provided: sk-...")."""
        return text.replace(self._api_key, "***") if self._api_key else text

    def _map_error(self, exc: Exception) -> ModelError:
        sdk = self._openai
        where = f"model {self.name!r}"
        if isinstance(exc, sdk.APITimeoutError):
            return TransientModelError(f"{where}: request timed out after {self.timeout_s}s")
        if isinstance(exc, sdk.APIConnectionError):
            target = self.base_url or "the default OpenAI endpoint"
            return TransientModelError(f"{where}: cannot connect to {target}: {exc}")
        if isinstance(exc, sdk.APIStatusError):
            status: int = exc.status_code
            body = exc.body
            detail = body.get("message") if isinstance(body, dict) else None
            if not isinstance(detail, str) or not detail:
                detail = str(getattr(exc, "message", "") or exc)
            message = f"{where}: HTTP {status}: {detail}"
            request_id = getattr(exc, "request_id", None)
            if request_id:
                message += f" (request id {request_id})"
            message = self._scrub(message)
            if status >= 500 or status in _TRANSIENT_STATUSES:
                return TransientModelError(message)
            return ModelError(message)
        return ModelError(self._scrub(f"{where}: {type(exc).__name__}: {exc}"))

    # ------------------------------------------------------------------ parsing

    def _parse(self, response: Any) -> ChatReply:
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise ModelError(f"model {self.name!r}: response has no choices")
        choice = choices[0]
        message = getattr(choice, "message", None)
        if message is None:
            raise ModelError(f"model {self.name!r}: response choice has no message")
        tool_calls = [
            self._parse_tool_call(raw, i)
            for i, raw in enumerate(getattr(message, "tool_calls", None) or [])
        ]
        finish_reason = getattr(choice, "finish_reason", None)
        # Some compatible servers (e.g. Ollama) say "stop" even when they called tools.
        if tool_calls and finish_reason in (None, "stop"):
            finish_reason = "tool_calls"
        usage = getattr(response, "usage", None)
        return ChatReply(
            content=getattr(message, "content", None),
            tool_calls=tool_calls,
            usage=Usage(
                prompt_tokens=getattr(usage, "prompt_tokens", None) or 0,
                completion_tokens=getattr(usage, "completion_tokens", None) or 0,
            ),
            model=getattr(response, "model", None) or self.name,
            finish_reason=finish_reason or "stop",
        )

    def _parse_tool_call(self, raw: Any, index: int) -> ToolCall:
        function = getattr(raw, "function", None)
        name = getattr(function, "name", None)
        if function is None or not isinstance(name, str) or not name:
            kind = getattr(raw, "type", "?")
            raise ModelError(f"model {self.name!r}: unsupported tool call of type {kind!r}")
        arguments: object = getattr(function, "arguments", None)
        if isinstance(arguments, str):
            if not arguments.strip():
                arguments = {}
            else:
                try:
                    arguments = json.loads(arguments)
                except json.JSONDecodeError as exc:
                    raise ModelError(
                        f"model {self.name!r}: tool call {name!r} has invalid JSON arguments: "
                        f"{exc.msg} at position {exc.pos}"
                    ) from None
        elif arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ModelError(
                f"model {self.name!r}: tool call {name!r} arguments must be a JSON object, "
                f"got {type(arguments).__name__}"
            )
        call_id = getattr(raw, "id", None) or f"call_{index}"
        return ToolCall(id=call_id, name=name, arguments=arguments)


def _message_to_api(message: Message) -> dict[str, Any]:
    """Map a port ``Message`` to a Chat Completions message dict."""
    if message.role == "tool":
        if not message.tool_call_id:
            raise ModelError("a tool message needs tool_call_id for the Chat Completions API")
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": message.content or "",
        }
    out: dict[str, Any] = {"role": message.role}
    if message.role == "assistant":
        out["content"] = message.content  # may be None when the turn only calls tools
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in message.tool_calls
            ]
    else:
        out["content"] = message.content or ""
    if message.name:
        out["name"] = message.name
    return out


def _tool_to_api(tool: ToolSpec) -> dict[str, Any]:
    parameters = tool.parameters or {"type": "object", "properties": {}}
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": parameters,
        },
    }
