"""The compiled :class:`Expression` and its cache: where checking and evaluating meet.

:func:`compile_expression` runs :func:`agentfn.expressions._parse.check` once per distinct
source (results and failures are cached), and :meth:`Expression.evaluate` runs the
:class:`~agentfn.expressions._eval.Evaluator`. Both turn internal failures into
:class:`agentfn.errors.ExpressionError`, the only exception callers see.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from agentfn.errors import ExpressionError
from agentfn.expressions import _limits
from agentfn.expressions._errors import (
    RUNTIME_ERRORS,
    CompileError,
    Failure,
    Problem,
    describe,
    kind,
    quote,
)
from agentfn.expressions._eval import Evaluator
from agentfn.expressions._parse import Key, check


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled, validated expression. Build it with :func:`compile_expression`."""

    source: str
    names: frozenset[str]
    keys: frozenset[Key]
    """``(name, key)`` read statically: ``steps.plan`` gives ``("steps", "plan")``."""
    _body: ast.expr = field(repr=False, compare=False)

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        """Evaluate against ``names``; any failure is an ``ExpressionError``."""
        try:
            return Evaluator(names).eval(self._body)
        except Problem as exc:
            raise ExpressionError(f"in {quote(self.source)}: {exc.message}") from None
        except RUNTIME_ERRORS as exc:
            raise ExpressionError(f"in {quote(self.source)}: {describe(exc)}") from exc


def compile_expression(source: str) -> Expression:
    """Parse and validate ``source``; results (and failures) are cached."""
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be a string, not {kind(source)}")
    result = compile_cached(source)
    if isinstance(result, Failure):
        raise ExpressionError(result.text())
    return result


def evaluate(source: str, names: Mapping[str, Any]) -> Any:
    """Compile (cached) and evaluate ``source`` against ``names``."""
    return compile_expression(source).evaluate(names)


@lru_cache(maxsize=1024)
def compile_cached(source: str) -> Expression | Failure:
    """The compiled expression, or why it was refused (templates share this cache)."""
    try:
        body, names, keys = check(source)
    except CompileError as exc:
        return exc.failure()
    except (RecursionError, MemoryError):
        return Failure(f"expression is nested too deeply (the limit is {_limits.MAX_DEPTH} levels)")
    except Exception as exc:  # never let an odd input escape as anything but ExpressionError
        return Failure(f"invalid expression: {type(exc).__name__}: {exc}")
    return Expression(source, names, keys, body)
