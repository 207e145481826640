"""How expression failures are carried inside the package and worded for users.

Compiling raises :class:`CompileError` (cached as a :class:`Failure`), evaluating raises
:class:`Problem`; the public entry points turn both into :class:`agentfn.errors.ExpressionError`.
The helpers here keep the wording of values and Python exceptions the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Python exceptions an evaluation may raise on odd values; they become ExpressionErrors.
RUNTIME_ERRORS = (
    LookupError,
    TypeError,
    ValueError,
    ArithmeticError,
    RecursionError,
    MemoryError,
)


@dataclass(frozen=True, slots=True)
class Failure:
    """A cached compile failure; ``line``/``column`` are 1-based and relative to the source."""

    message: str
    line: int | None = None
    column: int | None = None

    def text(self) -> str:
        if self.line is None or self.column is None:
            return self.message
        return f"{self.message} (line {self.line}, column {self.column})"


class CompileError(Exception):
    """A compile-time refusal with its 1-based (line, column), when it has one."""

    def __init__(self, message: str, position: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position

    def failure(self) -> Failure:
        if self.position is None:
            return Failure(self.message)
        return Failure(self.message, *self.position)


class Problem(Exception):
    """A runtime failure with a user-facing message; wrapped with the source by the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def kind(value: Any) -> str:
    """The type name of ``value`` as messages show it."""
    if value is None:
        return "None"
    if isinstance(value, Mapping):
        return "dict" if isinstance(value, dict) else "mapping"
    return type(value).__name__


def quote(source: str) -> str:
    """``source`` quoted for a message, shortened to 120 characters."""
    shown = source if len(source) <= 120 else source[:117] + "..."
    return repr(shown)


def describe(exc: BaseException) -> str:
    """A readable message for a Python exception raised while evaluating."""
    if isinstance(exc, KeyError):
        return f"unknown key {exc.args[0]!r}" if exc.args else "unknown key"
    if isinstance(exc, RecursionError):
        return "value is nested too deeply"
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OverflowError):
        detail = exc.args[-1] if exc.args else ""
        return f"number is too large ({detail})" if detail else "number is too large"
    return str(exc) or type(exc).__name__
