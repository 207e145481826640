"""The built-in memory tools: ``remember``, ``recall`` and ``forget``.

An agent gets them by naming them in its ``tools``. They keep facts in the tenant's
``MemoryStore``, under the calling agent's name and (with ``memory.scope: thread``) the run's
thread, so a model can reach no other agent's, thread's or tenant's facts whatever arguments it
proposes: the scope comes from the run, never from the call.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentfn.agents import MEMORY_TOOLS, AgentMemory
from agentfn.errors import ToolError, UserError
from agentfn.memory import MAX_KEY_CHARS, MAX_VALUE_CHARS, MemoryStore
from agentfn.ports import ToolSpec


class _Remember(BaseModel):
    """Remember a fact for later runs under a short key (replacing what the key held)."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=MAX_KEY_CHARS, description="a short name")
    value: str = Field(max_length=MAX_VALUE_CHARS, description="the fact")


class _Recall(BaseModel):
    """Recall remembered facts: the one under ``key``, those matching ``query`` (best
    first), or with neither the newest."""

    model_config = ConfigDict(extra="forbid")
    key: str | None = Field(default=None, max_length=MAX_KEY_CHARS)
    query: str | None = Field(default=None, max_length=1000)
    limit: int = Field(default=5, ge=1, le=50)


class _Forget(BaseModel):
    """Forget the fact under ``key``."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=MAX_KEY_CHARS)


_ARGS: dict[str, type[BaseModel]] = {"remember": _Remember, "recall": _Recall, "forget": _Forget}
assert set(_ARGS) == MEMORY_TOOLS


@functools.cache
def memory_tool_spec(name: str) -> ToolSpec:
    """What a model sees of the tool (built once: every turn of such an agent asks)."""
    model = _ARGS[name]
    schema = model.model_json_schema()
    schema.pop("title", None)
    description = (model.__doc__ or "").strip().replace("\n    ", " ")
    schema.pop("description", None)
    return ToolSpec(name=name, description=description, parameters=schema)


class MemoryTool:
    """One memory tool bound to the agent and scope of the turn calling it."""

    def __init__(
        self,
        name: str,
        memory: MemoryStore,
        *,
        agent: str,
        settings: AgentMemory,
        thread: str | None,
        run_id: str,
    ) -> None:
        self.name = name
        self.memory = memory
        self.agent = agent
        self.ttl_s = settings.ttl_s
        # A thread-scoped agent on a run without a thread keeps its facts to the run.
        self.thread = (thread or run_id) if settings.scope == "thread" else None

    def spec(self) -> ToolSpec:
        return memory_tool_spec(self.name)

    def invoke(self, arguments: dict[str, Any]) -> Any:
        try:
            args = _ARGS[self.name].model_validate(arguments)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "arguments"
            raise ToolError(
                f"tool {self.name!r} rejected its arguments: {where}: {first['msg']}", field=where
            ) from None
        try:
            return self._call(args)
        except UserError as exc:
            raise ToolError(f"tool {self.name!r}: {exc.message}", field=exc.field) from None

    def _call(self, args: BaseModel) -> Any:
        memory, agent, thread = self.memory, self.agent, self.thread
        if isinstance(args, _Remember):
            fact = memory.remember(agent, args.key, args.value, thread=thread, ttl_s=self.ttl_s)
            return {"remembered": fact.key, "expires_at": fact.expires_at}
        if isinstance(args, _Recall):
            facts = memory.recall(
                agent, key=args.key, query=args.query, thread=thread, limit=args.limit
            )
            return {"facts": [{"key": f.key, "value": f.value} for f in facts]}
        assert isinstance(args, _Forget)
        return {"forgotten": memory.forget(agent, args.key, thread=thread)}
