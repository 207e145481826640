"""One executor per node kind, registered by kind (see ``_registry``).

Importing this package imports every kind's module, which registers its executor.
"""

from __future__ import annotations

from agentfn.engine._executors import (
    _agent,
    _aggregate,
    _condition,
    _join,
    _loop,
    _parallel,
    _tool,
    _wait,
)
from agentfn.engine._executors._registry import EXECUTORS, Executor, execute, executor
from agentfn.engine._executors._wait import resume

__all__ = ["EXECUTORS", "Executor", "execute", "executor", "resume"]

_KINDS = (
    _aggregate,
    _agent,
    _condition,
    _join,
    _loop,
    _parallel,
    _tool,
    _wait,
)  # imported to register
