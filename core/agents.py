"""Agents: instructions + a model + tools, run one checkpointed turn at a time.

An agent's loop (ask the model, run the tools it asks for, ask again) is cut into turns. The
engine runs each turn as its own step and records its messages, so a worker that dies
mid-loop loses at most one turn, and a long conversation never has to fit in one function
invocation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentfn.concurrency_keys import ConcurrencySpec
from agentfn.errors import StepFailed, ToolError
from agentfn.ports import ChatReply, ChatRequest, Message, ToolCall, ToolSpec

MEMORY_TOOLS = frozenset({"remember", "recall", "forget"})
"""The built-in tools an agent may name in ``tools`` (``agentfn.memory_tools``): reserved, so
no project tool may take these names."""


class AgentMemory(BaseModel):
    """Where an agent's ``remember`` / ``recall`` / ``forget`` tools keep its facts."""

    model_config = ConfigDict(extra="forbid")

    scope: Literal["agent", "thread"] = "agent"
    """``agent``: every run of the agent (in the tenant) shares the facts; ``thread``: only
    runs on the same thread do (a run without a thread keeps them to itself)."""
    ttl_s: float | None = Field(default=None, gt=0)
    """Facts expire this many seconds after they are remembered; None: when forgotten."""


class AgentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instructions: str = Field(min_length=1)
    model: str = "default"
    tools: list[str] = Field(default_factory=list)
    max_steps: int = Field(default=8, ge=1, le=100)
    output: Literal["text", "json"] = "text"
    temperature: float | None = Field(default=None, ge=0, le=2)
    capabilities: list[str] = Field(default_factory=list)
    cache_ttl_s: float | None = Field(default=None, gt=0)
    """Opt-in: a request identical to one asked before at temperature 0 is answered with that
    reply for this many seconds (per tenant; no tokens, no cost)."""
    history_tokens: int = Field(default=4000, ge=0, le=1_000_000)
    """On a thread: the most of its earlier messages the agent starts from (estimated at four
    characters a token); older ones are dropped, or summarised by ``history_summariser``."""
    history_summariser: str | None = None
    """An agent of the blueprint that condenses what ``history_tokens`` leaves out."""
    memory: AgentMemory = Field(default_factory=AgentMemory)
    max_concurrency: int | None = Field(default=None, ge=1, le=1000)
    """At most this many of the agent's units (a node, a fan-out item, a loop part) at work
    at once in a run; the others wait, durably, in the run record (``Run.held``)."""
    concurrency: ConcurrencySpec | None = None
    """At most ``limit`` of the agent's steps running at once across every run and worker of
    the tenant that share ``key`` (e.g. one rate-limited API behind several agents)."""


@dataclass
class TurnResult:
    messages: list[Message]
    reply: ChatReply
    final: Any = None
    done: bool = False


ModelCall = Callable[[ChatRequest], ChatReply]
ToolCaller = Callable[[int, ToolCall], str]


def opening_messages(spec: AgentSpec, prompt: str) -> list[Message]:
    return [Message(role="system", content=spec.instructions), Message(role="user", content=prompt)]


def take_turn(
    *,
    name: str,
    spec: AgentSpec,
    messages: list[Message],
    tools: list[ToolSpec],
    turn: int,
    call_model: ModelCall,
    call_tool: ToolCaller,
) -> TurnResult:
    """Ask the model once; run the tools it requests; say whether the agent has finished."""
    request = ChatRequest(messages=messages, tools=tools, agent=name, temperature=spec.temperature)
    reply = call_model(request)
    history = [
        *messages,
        Message(role="assistant", content=reply.content, tool_calls=reply.tool_calls),
    ]
    if not reply.tool_calls:
        final, problem = _final_output(spec, reply)
        if problem is None:
            return TurnResult(history, reply, final=final, done=True)
        # The reply is saved with its turn, so retrying the step would replay it unchanged:
        # tell the model what was wrong instead, as a new turn it can answer differently.
        if turn + 1 >= spec.max_steps:
            raise StepFailed(
                f"agent {name!r} must answer in JSON but did not within max_steps="
                f"{spec.max_steps}: {problem}"
            )
        correction = f"{JSON_CORRECTION} ({problem}). Answer again with only the JSON value."
        return TurnResult([*history, Message(role="user", content=correction)], reply)
    if turn + 1 >= spec.max_steps:
        raise StepFailed(
            f"agent {name!r} reached max_steps={spec.max_steps} without a final answer"
        )
    allowed = {t.name for t in tools}
    for index, call in enumerate(reply.tool_calls):
        if call.name not in allowed:
            content = f"error: tool {call.name!r} is not available to this agent"
        else:
            try:
                content = call_tool(index, call)
            except ToolError as exc:
                # The model proposed bad arguments: tell it, so it can correct itself.
                content = f"error: {exc.message}"
        history.append(Message(role="tool", content=content, tool_call_id=call.id, name=call.name))
    return TurnResult(history, reply)


def tool_result_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


JSON_CORRECTION = "Your last answer was not valid JSON"


def _final_output(spec: AgentSpec, reply: ChatReply) -> tuple[Any, str | None]:
    """The agent's final answer, parsed for a JSON agent; or why it does not parse."""
    text = reply.content or ""
    if spec.output != "json":
        return text, None
    try:
        return json.loads(_strip_fence(text)), None
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} at line {exc.lineno} column {exc.colno}"


def _strip_fence(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        body = stripped[3:-3]
        return body.split("\n", 1)[1] if "\n" in body else body
    return stripped
