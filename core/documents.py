"""Untrusted documents — request bodies, stored blueprints — parsed within fixed bounds.

A blueprint or a body is attacker-controlled: 442 bytes of YAML aliases expand 9x per level,
a thousand nested brackets exhaust the parser's stack, a 4,300-digit integer or a lone UTF-16
surrogate blows up far from where it came in. Everything that parses such a document goes
through here, so each of those is a clear 4xx at the door and the limits live in one table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentfn.errors import UserError

if TYPE_CHECKING:
    import yaml


@dataclass(frozen=True)
class Limits:
    """Bounds of one untrusted document (bytes are checked where the bytes arrive)."""

    max_depth: int = 64  # nested mappings/sequences; blueprints need a handful
    max_number_chars: int = 64  # digits of one number literal
    max_string_chars: int = 1 << 20


LIMITS = Limits()


def loads_json(text: str | bytes, *, field: str = "body", limits: Limits = LIMITS) -> Any:
    """``json.loads`` that refuses what would hurt later: deep nesting, huge numbers,
    NaN/Infinity, lone surrogates. Raises ``UserError`` naming ``field``."""

    def number(kind: Callable[[str], Any]) -> Callable[[str], Any]:
        def parse(literal: str) -> Any:
            if len(literal) > limits.max_number_chars:
                raise UserError(
                    f"a number has more than {limits.max_number_chars} digits", field=field
                )
            return kind(literal)

        return parse

    def constant(name: str) -> Any:
        raise UserError(f"{name} is not a JSON number", field=field)

    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError(f"{field} is not UTF-8 text", field=field) from None
    _check_bracket_depth(text, limits, field)
    try:
        data = json.loads(
            text, parse_int=number(int), parse_float=number(float), parse_constant=constant
        )
    except RecursionError:
        raise _too_deep(limits, field) from None
    except ValueError as exc:
        raise UserError(f"{field} is not valid JSON: {exc}", field=field) from None
    check_tree(data, field=field, limits=limits)
    return data


def check_tree(data: Any, *, field: str, limits: Limits = LIMITS) -> None:
    """Depth and strings of parsed data, walked without recursion."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_string(value, limits, field)
        elif isinstance(value, dict | list):
            if depth >= limits.max_depth:
                raise _too_deep(limits, field)
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_string(key, limits, field)
                stack.append((item, depth + 1))


def check_yaml_nodes(root: yaml.Node, *, field: str, limits: Limits = LIMITS) -> None:
    """Before any value is constructed: no aliases (a node reached twice), bounded depth,
    bounded number literals. Aliases are refused outright: blueprints have no use for them,
    and they are how a few hundred bytes expand into gigabytes."""
    import yaml

    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            line = node.start_mark.line + 1
            raise UserError(f"line {line}: YAML aliases (*name) are not allowed", field=field)
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.tag.endswith((":int", ":float")) and len(node.value) > limits.max_number_chars:
                line = node.start_mark.line + 1
                raise UserError(
                    f"line {line}: a number has more than {limits.max_number_chars} digits",
                    field=field,
                )
            continue
        if depth >= limits.max_depth:
            raise _too_deep(limits, field)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend(((key, depth + 1), (value, depth + 1)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)


def _check_bracket_depth(text: str, limits: Limits, field: str) -> None:
    """JSON nesting, counted before json.loads recurses into it (strings skipped)."""
    if text.count("[") + text.count("{") <= limits.max_depth:
        return  # the common case, at C speed
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limits.max_depth:
                raise _too_deep(limits, field)
        elif char in "]}":
            depth -= 1


def _check_string(value: str, limits: Limits, field: str) -> None:
    if len(value) > limits.max_string_chars:
        limit = limits.max_string_chars
        raise UserError(f"a string is longer than {limit} characters", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError("a string holds a lone UTF-16 surrogate", field=field) from None


def _too_deep(limits: Limits, field: str) -> UserError:
    return UserError(f"nested deeper than {limits.max_depth} levels", field=field)
