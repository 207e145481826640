"""The one shape of SDK error translation, shared by the per-SDK ``_errors`` modules.

Adapters turn SDK errors into agentfn errors with a table: which SDK error (a class, an error
code, an HTTP status: each SDK's module says how its errors are matched) becomes which agentfn
error. ``translating`` runs such a table around a block (httpx's ``map_exceptions`` pattern),
so an adapter states *what* each error means and no adapter writes the ``try``/``except``
ladder again. This module imports no SDK.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

__all__ = ["Outcome", "translating"]

E = TypeVar("E", bound=BaseException)
K = TypeVar("K")

# What an SDK error becomes: an agentfn error to raise (made up front, or from the SDK error
# when its message needs the error's code or status), or None to swallow it (an idempotent
# delete, a stale receipt). The SDK error is never chained: its text may hold request data.
Outcome = BaseException | Callable[[E], BaseException] | None


@contextlib.contextmanager
def translating(
    caught: type[E] | tuple[type[E], ...],
    matches: Callable[[E, K], bool],
    table: Mapping[K, Outcome[E]],
) -> Iterator[None]:
    """Raise the outcome of the first ``table`` entry that ``matches`` an error of ``caught``
    raised in the block; an error no entry matches propagates unchanged."""
    try:
        yield
    except caught as exc:
        for key, outcome in table.items():
            if not matches(exc, key):
                continue
            if outcome is None:
                return
            raise (outcome if isinstance(outcome, BaseException) else outcome(exc)) from None
        raise
