"""The whitelisted functions and methods: the only code an expression can call.

Each table maps a name to ``(implementation, fewest arguments, most arguments or None)``. The
checker refuses a call to any other name at compile time (and a wrong argument count to a
function); the evaluator picks the method table by the receiver's type at run time.
docs/expressions.md lists the same tables, and a unit test keeps the two equal. Implementations
that could build large values enforce the limits in :mod:`agentfn.expressions._limits`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from agentfn.expressions import _limits
from agentfn.expressions._errors import Problem, kind

Spec = tuple[Callable[..., Any], int, int | None]


def arity_problem(name: str, low: int, high: int | None, given: int) -> str | None:
    """Why ``given`` arguments do not fit ``name``'s ``low``..``high``, or None if they do."""
    if low <= given and (high is None or given <= high):
        return None
    if high is None:
        expected = f"at least {low} argument{'s' if low != 1 else ''}"
    elif low == high:
        expected = f"{low} argument{'s' if low != 1 else ''}"
    else:
        expected = f"{low} to {high} arguments"
    return f"{name}() takes {expected} ({given} given)"


def to_text(value: Any) -> str:
    """A value as text, for templates and ``join()``: dicts and lists as JSON, None as ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    return str(value)


# --------------------------------------------------------------------------- functions


def _want_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise Problem(f"{name}() expects a string, not {kind(value)}")
    return value


def _want_mapping(name: str, value: Any) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise Problem(f"{name}() expects a mapping, not {kind(value)}")
    return value


def _fn_round(number: Any, digits: Any = None) -> Any:
    if digits is None:
        return round(number)
    limit = _limits.MAX_ROUND_DIGITS
    if isinstance(digits, int) and abs(digits) > limit:
        raise Problem(f"round() digits must be between -{limit} and {limit}")
    return round(number, digits)


def _fn_int(value: Any) -> Any:
    # Decimal parsing is quadratic; anything this long is above MAX_INT_BITS anyway.
    if isinstance(value, str) and len(value) > 2 * _limits.MAX_INT_BITS:
        raise Problem(f"int() argument is too long ({len(value)} characters)")
    return int(value)


def _fn_sum(items: Any) -> Any:
    return sum(items)


def _fn_flatten(items: Any) -> list[Any]:
    """One level: ``[[1, 2], [3], 4]`` is ``[1, 2, 3, 4]`` (a fan-out of lists, as one list)."""
    if not isinstance(items, list | tuple):
        raise Problem(f"flatten() expects a list, not {kind(items)}")
    out: list[Any] = []
    for item in items:
        if isinstance(item, list | tuple):
            out.extend(item)
        else:
            out.append(item)
    return out


def _fn_sorted(items: Any) -> list[Any]:
    return sorted(items)


def _fn_get(container: Any, key: Any, default: Any = None) -> Any:
    if container is None:
        return default
    if isinstance(container, Mapping):
        try:
            return container[key]
        except KeyError:
            return default
    if isinstance(container, (list, tuple, str)):
        if isinstance(key, bool) or not isinstance(key, int):
            raise Problem(f"get() index must be an integer, not {kind(key)}")
        try:
            return container[key]
        except IndexError:
            return default
    raise Problem(f"get() expects a mapping or a list, not {kind(container)}")


def _fn_join(sep: Any, items: Any) -> str:
    separator = _want_str("join", sep)
    if isinstance(items, Mapping) or not isinstance(items, Iterable):
        raise Problem(f"join() expects a list, not {kind(items)}")
    parts = [to_text(item) for item in items]
    if len(separator) * max(len(parts) - 1, 0) > _limits.MAX_GROWTH:
        raise Problem("join() result would be too large")
    return separator.join(parts)


def _fn_split(text: Any, sep: Any = None) -> list[str]:
    return _want_str("split", text).split(sep)


def _fn_default(value: Any, fallback: Any) -> Any:
    return fallback if value is None else value


FUNCTIONS: dict[str, Spec] = {
    "len": (len, 1, 1),
    "str": (str, 1, 1),
    "int": (_fn_int, 1, 1),
    "float": (float, 1, 1),
    "bool": (bool, 1, 1),
    "abs": (abs, 1, 1),
    "min": (min, 1, None),
    "max": (max, 1, None),
    "round": (_fn_round, 1, 2),
    "sum": (_fn_sum, 1, 1),
    "any": (any, 1, 1),
    "all": (all, 1, 1),
    "sorted": (_fn_sorted, 1, 1),
    "flatten": (_fn_flatten, 1, 1),
    "lower": (lambda s: _want_str("lower", s).lower(), 1, 1),
    "upper": (lambda s: _want_str("upper", s).upper(), 1, 1),
    "strip": (lambda s: _want_str("strip", s).strip(), 1, 1),
    "contains": (lambda container, item: item in container, 2, 2),
    "startswith": (lambda s, prefix: _want_str("startswith", s).startswith(prefix), 2, 2),
    "endswith": (lambda s, suffix: _want_str("endswith", s).endswith(suffix), 2, 2),
    "get": (_fn_get, 2, 3),
    "keys": (lambda m: list(_want_mapping("keys", m).keys()), 1, 1),
    "values": (lambda m: list(_want_mapping("values", m).values()), 1, 1),
    "join": (_fn_join, 2, 2),
    "split": (_fn_split, 1, 2),
    "default": (_fn_default, 2, 2),
}


# --------------------------------------------------------------------------- methods


def _str_replace(text: str, old: Any, new: Any, count: Any = -1) -> str:
    if isinstance(old, str) and isinstance(new, str) and isinstance(count, int):
        occurrences = len(text) + 1 if old == "" else text.count(old)
        if count >= 0:
            occurrences = min(occurrences, count)
        if occurrences * (len(new) - len(old)) > _limits.MAX_GROWTH:
            raise Problem("replace() result would be too large")
    return text.replace(old, new, count)


def _mapping_get(mapping: Mapping[Any, Any], key: Any, default: Any = None) -> Any:
    try:
        return mapping[key]
    except KeyError:
        return default


STR_METHODS: dict[str, Spec] = {
    "lower": (str.lower, 0, 0),
    "upper": (str.upper, 0, 0),
    "strip": (str.strip, 0, 1),
    "startswith": (str.startswith, 1, 3),
    "endswith": (str.endswith, 1, 3),
    "split": (str.split, 0, 2),
    "replace": (_str_replace, 2, 3),
    "count": (str.count, 1, 3),
}

MAPPING_METHODS: dict[str, Spec] = {
    "get": (_mapping_get, 1, 2),
    "keys": (lambda m: list(m.keys()), 0, 0),
    "values": (lambda m: list(m.values()), 0, 0),
    "items": (lambda m: list(m.items()), 0, 0),
}

SEQUENCE_METHODS: dict[str, Spec] = {
    "count": (lambda seq, item: seq.count(item), 1, 1),
    "index": (lambda seq, *args: seq.index(*args), 1, 3),
}

# Any of these names passes the compile-time check; the receiver's type decides at run time.
METHOD_NAMES = frozenset(STR_METHODS) | frozenset(MAPPING_METHODS) | frozenset(SEQUENCE_METHODS)


def method_table(receiver: Any) -> dict[str, Spec]:
    """The methods callable on ``receiver`` (none for other types)."""
    if isinstance(receiver, str):
        return STR_METHODS
    if isinstance(receiver, Mapping):
        return MAPPING_METHODS
    if isinstance(receiver, (list, tuple)):
        return SEQUENCE_METHODS
    return {}
