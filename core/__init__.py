"""agentfn: AI agents, tools and workflows as durable, event-driven serverless functions.

The names in ``__all__`` are the public API — what a user's tools, workflows, tests and
custom adapters import. Everything else is reachable (``agentfn.engine``,
``agentfn.adapters.aws``…) but not promised. Names load on first use, so ``import agentfn``
costs almost nothing on a function's cold path.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it (one table; ``__getattr__`` and ``__dir__`` read it)
_EXPORTS: dict[str, str] = {
    # writing tools and workflows
    "tool": "agentfn.tools",
    "Tool": "agentfn.tools",
    "idempotency_key": "agentfn.tool_calls",
    "load_blueprint": "agentfn.workflows",
    "Settings": "agentfn.settings",
    # run records a caller reads back
    "Run": "agentfn.runs",
    "RunStatus": "agentfn.runs",
    # ports a custom adapter implements, and the types crossing them
    "BlobStore": "agentfn.ports",
    "Blob": "agentfn.ports",
    "Page": "agentfn.ports",
    "Queue": "agentfn.ports",
    "QueueMessage": "agentfn.ports",
    "DeadLetter": "agentfn.ports",
    "SecretStore": "agentfn.ports",
    "Model": "agentfn.ports",
    "ChatRequest": "agentfn.ports",
    "ChatReply": "agentfn.ports",
    "Message": "agentfn.ports",
    "ToolCall": "agentfn.ports",
    "ToolSpec": "agentfn.ports",
    "Usage": "agentfn.ports",
    # errors a tool or adapter raises, and a caller catches
    "AgentfnError": "agentfn.errors",
    "UserError": "agentfn.errors",
    "ConfigError": "agentfn.errors",
    "NotFound": "agentfn.errors",
    "PreconditionFailed": "agentfn.errors",
    "ToolError": "agentfn.errors",
    "ModelError": "agentfn.errors",
    "TransientModelError": "agentfn.errors",
    # collaboration
    "Plan": "agentfn.collaboration",
    "Subtask": "agentfn.collaboration",
    "PlanError": "agentfn.collaboration",
    "check_plan": "agentfn.collaboration",
    "assign_agents": "agentfn.collaboration",
    "collaboration_blueprint": "agentfn.collaboration",
    "collaboration_view": "agentfn.collaboration",
    "agent_loads": "agentfn.collaboration",
    "ComplexTask": "agentfn.collaboration",
    "plan_task": "agentfn.collaboration",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from agentfn.collaboration import (
        ComplexTask as ComplexTask,
        Plan as Plan,
        PlanError as PlanError,
        Subtask as Subtask,
        agent_loads as agent_loads,
        assign_agents as assign_agents,
        check_plan as check_plan,
        collaboration_blueprint as collaboration_blueprint,
        collaboration_view as collaboration_view,
        plan_task as plan_task,
    )
    from agentfn.errors import (
        AgentfnError as AgentfnError,
        ConfigError as ConfigError,
        ModelError as ModelError,
        NotFound as NotFound,
        PreconditionFailed as PreconditionFailed,
        ToolError as ToolError,
        TransientModelError as TransientModelError,
        UserError as UserError,
    )
    from agentfn.ports import (
        Blob as Blob,
        BlobStore as BlobStore,
        ChatReply as ChatReply,
        ChatRequest as ChatRequest,
        DeadLetter as DeadLetter,
        Message as Message,
        Model as Model,
        Page as Page,
        Queue as Queue,
        QueueMessage as QueueMessage,
        SecretStore as SecretStore,
        ToolCall as ToolCall,
        ToolSpec as ToolSpec,
        Usage as Usage,
    )
    from agentfn.runs import Run as Run, RunStatus as RunStatus
    from agentfn.settings import Settings as Settings
    from agentfn.tool_calls import idempotency_key as idempotency_key
    from agentfn.tools import Tool as Tool, tool as tool
    from agentfn.workflows import load_blueprint as load_blueprint


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agentfn' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next access skips this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
