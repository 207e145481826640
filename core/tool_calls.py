"""The idempotency key of the tool call being run.

Steps run exactly once in effect, but a tool's side effects are at least once: a worker can
die after the tool acted and before its result was recorded, and the step is then taken over
and the tool called again. ``idempotency_key()`` is the same on every such repeat of one call
(run id, step key and, inside an agent turn, the call's position) and different for every
other call, so a tool can pass it to an API that deduplicates (``Idempotency-Key`` headers,
conditional writes). HTTP tools send it as the ``Idempotency-Key`` header themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from agentfn.errors import UserError

__all__ = ["calling", "current_key", "idempotency_key"]

_KEY: ContextVar[str | None] = ContextVar("agentfn_tool_call", default=None)


def idempotency_key() -> str:
    """The key of the tool call in progress; only inside a call the engine makes."""
    key = _KEY.get()
    if key is None:
        raise UserError("idempotency_key() is only available while the engine runs a tool")
    return key


def current_key() -> str | None:
    return _KEY.get()


@contextmanager
def calling(run_id: str, step: str, index: int | None = None) -> Iterator[str]:
    """Run a tool call with its key set (the engine wraps every tool call in this)."""
    key = f"{run_id}/{step}" + (f"/{index}" if index is not None else "")
    token = _KEY.set(key)
    try:
        yield key
    finally:
        _KEY.reset(token)
