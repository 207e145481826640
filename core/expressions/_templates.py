"""``{{ expression }}`` templates: finding the expressions in text, and rendering.

Prompts, tool arguments and run outputs are templates. Each ``{{ … }}`` segment is compiled as
an ordinary expression (same cache, same limits); errors are reported at their position in the
whole template. A template that is exactly one segment renders to the value itself, otherwise
to text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from agentfn.errors import ExpressionError
from agentfn.expressions import _limits
from agentfn.expressions._errors import RUNTIME_ERRORS, Failure, describe, kind, quote
from agentfn.expressions._expression import Expression, compile_cached
from agentfn.expressions._functions import to_text
from agentfn.expressions._parse import index_position


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template. Build it with :func:`compile_template`."""

    source: str
    expressions: tuple[Expression, ...]
    _parts: tuple[str | Expression, ...] = field(repr=False, compare=False)
    _native: bool = field(repr=False, compare=False)

    @property
    def names(self) -> frozenset[str]:
        """Top-level names referenced by any of the expressions."""
        return frozenset[str]().union(*(e.names for e in self.expressions))

    @property
    def keys(self) -> frozenset[tuple[str, str]]:
        """Static keys read by any of the expressions (see ``Expression.keys``)."""
        return frozenset[tuple[str, str]]().union(*(e.keys for e in self.expressions))

    def render(self, names: Mapping[str, Any]) -> Any:
        """The native value for a lone ``{{ expr }}``, else the rendered string."""
        if self._native:
            return self.expressions[0].evaluate(names)
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = part.evaluate(names)
            try:
                out.append(to_text(value))
            except RUNTIME_ERRORS as exc:
                raise ExpressionError(
                    f"in {quote(part.source)}: cannot render the value: {describe(exc)}"
                ) from exc
        return "".join(out)


def compile_template(text: str) -> Template:
    """Split ``text`` into literal text and ``{{ expr }}`` segments and compile each one."""
    if not isinstance(text, str):
        raise ExpressionError(f"a template must be a string, not {kind(text)}")
    result = _compile_template_cached(text)
    if isinstance(result, str):
        raise ExpressionError(result)
    return result


def render(text: str, names: Mapping[str, Any]) -> Any:
    """Compile (cached) and render ``text`` against ``names``."""
    return compile_template(text).render(names)


@lru_cache(maxsize=256)
def _compile_template_cached(text: str) -> Template | str:
    if "{{" not in text:
        return Template(text, (), (text,), False)
    parts: list[str | Expression] = []
    position = 0
    while True:
        start = text.find("{{", position)
        if start < 0:
            if position < len(text):
                parts.append(text[position:])
            break
        if start > position:
            parts.append(text[position:start])
        close = _find_close(text, start + 2)
        if close is None:
            line, column = index_position(text, start)
            return f"unclosed '{{{{' in template (line {line}, column {column})"
        inner = text[start + 2 : close]
        expr_at = start + 2 + len(inner) - len(inner.lstrip())
        result = compile_cached(inner.strip())
        if isinstance(result, Failure):
            return _template_failure(text, start, expr_at, result)
        parts.append(result)
        position = close + 2
    expressions = tuple(part for part in parts if isinstance(part, Expression))
    native = len(expressions) == 1 and all(
        isinstance(part, Expression) or not part.strip() for part in parts
    )
    return Template(text, expressions, tuple(parts), native)


def _template_failure(text: str, start: int, expr_at: int, failure: Failure) -> str:
    if failure.line is None or failure.column is None:
        line, column = index_position(text, start)
    else:
        base_line, base_column = index_position(text, expr_at)
        if failure.line == 1:
            line, column = base_line, base_column + failure.column - 1
        else:
            line, column = base_line + failure.line - 1, failure.column
    return f"in template: {failure.message} (line {line}, column {column})"


def _find_close(text: str, index: int) -> int | None:
    """Index of the ``}}`` closing an expression that starts at ``index``.

    Skips string literals and balanced brackets, so ``{{ {'a': {'b': 1}} }}`` and
    ``{{ '}}' }}`` work; falls back to the first ``}}`` when the text is not balanced.
    """
    depth = 0
    end = min(len(text), index + _limits.MAX_SOURCE_LENGTH + 2)
    i = index
    while i < end:
        char = text[i]
        if char in "'\"":
            after = _skip_string(text, i, end)
            if after is None:
                break
            i = after
            continue
        if char in "([{":
            depth += 1
        elif char in ")]":
            depth = max(depth - 1, 0)
        elif char == "}":
            if depth == 0 and text.startswith("}}", i):
                return i
            depth = max(depth - 1, 0)
        i += 1
    found = text.find("}}", index)
    return None if found < 0 else found


def _skip_string(text: str, i: int, end: int) -> int | None:
    delimiter = text[i]
    triple = text.startswith(delimiter * 3, i)
    j = i + (3 if triple else 1)
    while j < end:
        char = text[j]
        if char == "\\":
            j += 2
        elif triple and text.startswith(delimiter * 3, j):
            return j + 3
        elif not triple and char == delimiter:
            return j + 1
        elif not triple and char == "\n":
            return None
        else:
            j += 1
    return None
