"""Amazon Bedrock adapter: the Bedrock Runtime Converse API through boto3.

Credentials come from boto3's default chain — on Lambda, the function's role; no key is stored
or rotated. The region is the spec's, else the environment's (``AWS_REGION``). botocore's own
retries are off: ``agentfn.resilience.ResilientModel`` owns retries and the circuit breaker.
Throttling, service-unavailable, internal and model-timeout errors (and 429/5xx) are
transient; validation, access and missing-model errors fail the step with Bedrock's message.
"""

from __future__ import annotations

import json
from typing import Any

from agentfn.errors import ModelError, TransientModelError
from agentfn.ports import ChatReply, ChatRequest, Message, ToolCall, ToolSpec, Usage

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelTimeoutException",
        "ModelNotReadyException",
        "TooManyRequestsException",
    }
)
STOP_REASONS = {"tool_use": "tool_calls", "end_turn": "stop", "max_tokens": "length"}


class BedrockModel:
    """A ``Model`` backed by ``bedrock-runtime`` ``Converse``."""

    def __init__(
        self,
        model_id: str,
        *,
        region: str | None = None,
        timeout_s: float = 60.0,
        temperature: float | None = None,
    ) -> None:
        import boto3  # lazy: only a function that calls Bedrock pays for it
        from botocore.config import Config

        self.name = model_id
        self.temperature = temperature
        self.timeout_s = timeout_s
        config = Config(
            retries={"max_attempts": 1, "mode": "standard"},
            read_timeout=timeout_s,
            connect_timeout=min(10.0, timeout_s),
        )
        # A session of its own: the credential chain is read now, not from boto3's process-wide
        # default session (which caches whatever it resolved first).
        session = boto3.session.Session(region_name=region)
        self._client: Any = session.client("bedrock-runtime", config=config)

    def __repr__(self) -> str:
        return f"BedrockModel(model={self.name!r})"

    def chat(self, request: ChatRequest) -> ChatReply:
        system = [{"text": m.content or ""} for m in request.messages if m.role == "system"]
        kwargs: dict[str, Any] = {
            "modelId": request.model or self.name,
            "messages": _messages(m for m in request.messages if m.role != "system"),
        }
        if system:
            kwargs["system"] = system
        if request.tools:
            kwargs["toolConfig"] = {"tools": [_tool(t) for t in request.tools]}
        temperature = request.temperature if request.temperature is not None else self.temperature
        if temperature is not None:
            kwargs["inferenceConfig"] = {"temperature": temperature}
        try:
            response = self._client.converse(**kwargs)
        except Exception as exc:  # botocore's errors: mapped, never leaked as they are
            raise self._map_error(exc) from None
        return self._parse(response)

    def _map_error(self, exc: Exception) -> ModelError:
        from botocore.exceptions import (
            ClientError,
            ConnectionError as BotoConnectionError,
            ReadTimeoutError,
        )

        where = f"model {self.name!r}"
        if isinstance(exc, ReadTimeoutError):
            return TransientModelError(f"{where}: request timed out after {self.timeout_s}s")
        if isinstance(exc, BotoConnectionError):
            return TransientModelError(f"{where}: cannot connect to Bedrock: {exc}")
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = str(error.get("Message", "")) or code
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            text = f"{where}: Bedrock {code or status}: {message}"
            if code in TRANSIENT_CODES or status == 429 or status >= 500:
                return TransientModelError(text)
            return ModelError(text)
        return ModelError(f"{where}: {type(exc).__name__}: {exc}")

    def _parse(self, response: dict[str, Any]) -> ChatReply:
        content = response.get("output", {}).get("message", {}).get("content", [])
        texts = [block["text"] for block in content if "text" in block]
        calls = [
            ToolCall(
                id=str(block["toolUse"]["toolUseId"]),
                name=str(block["toolUse"]["name"]),
                arguments=_arguments(block["toolUse"].get("input")),
            )
            for block in content
            if "toolUse" in block
        ]
        usage = response.get("usage", {})
        return ChatReply(
            content="".join(texts) if texts else None,
            tool_calls=calls,
            usage=Usage(
                prompt_tokens=int(usage.get("inputTokens", 0)),
                completion_tokens=int(usage.get("outputTokens", 0)),
            ),
            model=self.name,
            finish_reason=STOP_REASONS.get(str(response.get("stopReason")), "stop"),
        )


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            raise ModelError(f"Bedrock tool input is not JSON: {raw[:200]!r}") from None
        if isinstance(value, dict):
            return value
    raise ModelError("Bedrock tool input is not an object")


def _messages(messages: Any) -> list[dict[str, Any]]:
    """Our messages as Converse's, which alternate user and assistant: tool results become
    ``toolResult`` blocks of a user message, consecutive ones merged into one."""
    out: list[dict[str, Any]] = []
    for m in messages:
        blocks = _blocks(m)
        role = "assistant" if m.role == "assistant" else "user"
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out


def _blocks(m: Message) -> list[dict[str, Any]]:
    if m.role == "tool":
        if not m.tool_call_id:
            raise ModelError("a tool message needs tool_call_id for Bedrock's toolResult")
        result = {"toolUseId": m.tool_call_id, "content": [{"text": m.content or ""}]}
        return [{"toolResult": result}]
    blocks: list[dict[str, Any]] = [{"text": m.content}] if m.content else []
    for call in m.tool_calls:
        blocks.append(
            {"toolUse": {"toolUseId": call.id, "name": call.name, "input": call.arguments}}
        )
    return blocks or [{"text": ""}]


def _tool(tool: ToolSpec) -> dict[str, Any]:
    schema = tool.parameters or {"type": "object", "properties": {}}
    return {
        "toolSpec": {
            "name": tool.name,
            "description": tool.description or tool.name,
            "inputSchema": {"json": schema},
        }
    }
