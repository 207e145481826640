"""A deterministic model driven by a YAML rule file.

Demos and tests need a model that answers the same way every time, costs nothing and needs no
network, yet exercises the whole agent loop (tool calls, tool results, usage, pricing). Rules
are tried in order; the first whose ``agent``, ``match``, ``earlier``, ``after_tool`` and
``instructions`` conditions all hold
produces the reply.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from agentfn.errors import ConfigError, ModelError, TransientModelError
from agentfn.ports import ChatReply, ChatRequest, Message, ToolCall, Usage

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class ScriptToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class ScriptReply(BaseModel):
    """What to answer; strings may hold ``{placeholders}``."""

    model_config = ConfigDict(extra="forbid")

    content: str | None = None
    tool_calls: list[ScriptToolCall] = Field(default_factory=list)
    error: str | None = None
    """Fail instead of answering, with this message: a workflow's failure handling, tested
    deterministically. A ``ModelError`` (never retried), or with ``transient`` a
    ``TransientModelError`` (retried like a provider's throttling)."""
    transient: bool = False

    @model_validator(mode="after")
    def _an_error_answers_nothing(self) -> ScriptReply:
        if self.error is not None and (self.content is not None or self.tool_calls):
            raise ValueError("a reply with 'error' has no content or tool_calls")
        if self.transient and self.error is None:
            raise ValueError("'transient' describes an 'error'")
        return self


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str | None = None
    """Exact match on ``ChatRequest.agent``."""
    match: str | None = None
    """``re.search`` (DOTALL) on the last user message; named groups become placeholders."""
    after_tool: bool | None = None
    """True: only when the last message is a tool result; false: only when it is not."""
    instructions: str | None = None
    """``re.search`` (DOTALL, case-insensitive) on the system message: answers that depend
    on an agent's instructions, as a replay or a tuning grid changes them."""
    earlier: str | None = None
    """``re.search`` (DOTALL) on the conversation before the last user message (one line per
    message, as ``role: content``): answers that depend on what was said before, such as a
    thread's history; named groups become placeholders."""
    reply: ScriptReply

    _pattern: re.Pattern[str] | None = PrivateAttr(default=None)
    _earlier: re.Pattern[str] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _compile(self) -> Rule:
        if self.match is not None:
            try:
                self._pattern = re.compile(self.match, re.DOTALL)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.match!r}: {exc}") from None
        if self.instructions is not None:
            try:
                re.compile(self.instructions)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.instructions!r}: {exc}") from None
        if self.earlier is not None:
            try:
                self._earlier = re.compile(self.earlier, re.DOTALL)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.earlier!r}: {exc}") from None
        return self

    @property
    def pattern(self) -> re.Pattern[str] | None:
        return self._pattern

    @property
    def earlier_pattern(self) -> re.Pattern[str] | None:
        return self._earlier


class Script(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = "scripted"
    """Name reported in replies (used for pricing)."""
    rules: list[Rule] = Field(default_factory=list)
    default: ScriptReply | None = None
    """Reply when no rule matches; without it, no match is a ``ModelError``."""


def _substitute(value: Any, names: dict[str, str]) -> Any:
    """Fill ``{name}`` placeholders in strings, recursively through dicts and lists.

    A regex rather than ``str.format``: rule files must not reach attributes or indexes of
    anything, and unknown placeholders (or literal braces such as JSON) stay as written.
    """
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: names.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {k: _substitute(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, names) for v in value]
    return value


def _tokens(content: str | None, tool_calls: list[ToolCall]) -> int:
    """Rough but deterministic token count: four characters a token."""
    count = math.ceil(len(content or "") / 4)
    for call in tool_calls:
        count += math.ceil(len(json.dumps(call.arguments, sort_keys=True)) / 4)
    return count


class ScriptedModel:
    """A ``Model`` that answers from a ``Script``; stateless, so safe to share across threads."""

    def __init__(self, script: Script, name: str | None = None) -> None:
        self.script = script
        self.name = name or script.model

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedModel:
        """Load and validate a rule file; any problem is a ``ConfigError`` naming the file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{path}: cannot read scripted model rules: {exc.strerror or exc}"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            problem = getattr(exc, "problem", None) or type(exc).__name__  # never the text
            raise ConfigError(f"{where}: invalid YAML: {problem}") from None
        if not isinstance(data, dict):
            raise ConfigError(
                f"{path}: scripted model rules must be a mapping, got {type(data).__name__}"
            )
        try:
            script = Script.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in exc.errors()
            )
            first = exc.errors()[0]["loc"] if exc.errors() else ()
            raise ConfigError(
                f"{path}: invalid scripted model rules: {problems}",
                field=".".join(str(p) for p in first) or None,
            ) from None
        return cls(script)

    def chat(self, request: ChatRequest) -> ChatReply:
        messages = request.messages
        last_user = next((m.content or "" for m in reversed(messages) if m.role == "user"), "")
        system = next((m.content or "" for m in messages if m.role == "system"), "")
        after_tool = bool(messages) and messages[-1].role == "tool"
        last_at = max((i for i, m in enumerate(messages) if m.role == "user"), default=0)
        earlier = "\n".join(
            f"{m.role}: {m.content or ''}" for m in messages[:last_at] if m.role != "system"
        )
        trailing_tools: list[str] = []
        for m in reversed(messages):
            if m.role != "tool":
                break
            trailing_tools.append(m.content or "")
        names = {
            "last_user": last_user,
            "tool_result": "\n".join(reversed(trailing_tools)),
            "agent": request.agent or "",
        }

        reply = self.script.default
        for rule in self.script.rules:
            if rule.agent is not None and rule.agent != request.agent:
                continue
            if rule.after_tool is not None and rule.after_tool != after_tool:
                continue
            if rule.instructions is not None and not re.search(
                rule.instructions, system, re.DOTALL | re.IGNORECASE
            ):
                continue
            groups: dict[str, str] = {}
            for pattern, text in ((rule.pattern, last_user), (rule.earlier_pattern, earlier)):
                if pattern is None:
                    continue
                found = pattern.search(text)
                if found is None:
                    break
                groups.update({k: v or "" for k, v in found.groupdict().items()})
            else:
                names.update(groups)
                reply = rule.reply
                break
        if reply is None:
            raise ModelError(
                f"scripted model {self.name!r}: no rule matches agent {request.agent!r} "
                "and the script has no default"
            )

        if reply.error is not None:
            failure = TransientModelError if reply.transient else ModelError
            raise failure(f"scripted model {self.name!r}: {_substitute(reply.error, names)}")
        n = sum(1 for m in messages if m.role == "assistant")
        tool_calls = [
            ToolCall(
                id=f"call_{n}_{i}", name=call.name, arguments=_substitute(call.arguments, names)
            )
            for i, call in enumerate(reply.tool_calls)
        ]
        content = _substitute(reply.content, names) if reply.content is not None else None
        return ChatReply(
            content=content,
            tool_calls=tool_calls,
            usage=Usage(
                prompt_tokens=sum(_prompt_tokens(m) for m in messages),
                completion_tokens=_tokens(content, tool_calls),
            ),
            model=self.name,
            finish_reason="tool_calls" if tool_calls else "stop",
        )


def _prompt_tokens(message: Message) -> int:
    return _tokens(message.content, message.tool_calls)
