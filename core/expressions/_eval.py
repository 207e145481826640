"""Evaluation of a checked syntax tree.

:class:`Evaluator` walks only trees that :mod:`agentfn.expressions._parse` accepted, with
Python's semantics for the allowed operators, except where untrusted text must not reach
Python's object model: ``a.b`` is a key lookup on a mapping (never ``getattr``), calls go only
through :mod:`agentfn.expressions._functions`, and results that could exhaust memory are
refused before they are built. Failures raise :class:`~agentfn.expressions._errors.Problem`.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from agentfn.expressions import _limits
from agentfn.expressions._errors import Problem, kind
from agentfn.expressions._functions import FUNCTIONS, arity_problem, method_table

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


class Evaluator:
    """Evaluates checked nodes against the names in scope."""

    __slots__ = ("names",)

    def __init__(self, names: Mapping[str, Any]) -> None:
        self.names = names

    def eval(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Attribute):
            value = self.eval(node.value)
            if isinstance(value, Mapping):
                return _key(value, node.attr)
            where = "None" if value is None else f"a {kind(value)} value"
            raise Problem(f"cannot look up {node.attr!r} on {where}")
        if isinstance(node, ast.Name):
            try:
                return self.names[node.id]
            except KeyError:
                raise Problem(f"unknown name {node.id!r}") from None
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Compare):
            left = self.eval(node.left)
            result: Any = True
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = self.eval(comparator)
                result = _COMPARE[type(op)](left, right)
                if not result:
                    return result
                left = right
            return result
        if isinstance(node, ast.BoolOp):
            is_and = isinstance(node.op, ast.And)
            value = None
            for sub in node.values:
                value = self.eval(sub)
                if bool(value) != is_and:
                    return value
            return value
        if isinstance(node, ast.Call):
            return _check_int(self.call(node))
        if isinstance(node, ast.BinOp):
            return _check_int(_binop(node.op, self.eval(node.left), self.eval(node.right)))
        if isinstance(node, ast.Subscript):
            container = self.eval(node.value)
            if isinstance(node.slice, ast.Slice):
                bounds = [
                    None if part is None else self.eval(part)
                    for part in (node.slice.lower, node.slice.upper, node.slice.step)
                ]
                if not isinstance(container, (str, list, tuple)):
                    raise Problem(f"cannot slice a {kind(container)} value")
                return container[slice(*bounds)]
            return _key(container, self.eval(node.slice))
        if isinstance(node, ast.UnaryOp):
            operand = self.eval(node.operand)
            if isinstance(node.op, ast.Not):
                return not operand
            if isinstance(node.op, ast.USub):
                return -operand
            return +operand
        if isinstance(node, ast.IfExp):
            return self.eval(node.body) if self.eval(node.test) else self.eval(node.orelse)
        if isinstance(node, ast.List):
            return [self.eval(elt) for elt in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(self.eval(elt) for elt in node.elts)
        if isinstance(node, ast.Dict):
            return {
                self.eval(key): self.eval(value)
                for key, value in zip(node.keys, node.values, strict=True)
                if key is not None
            }
        if isinstance(node, ast.Set):
            return {self.eval(elt) for elt in node.elts}
        raise Problem(f"cannot evaluate {type(node).__name__}")  # unreachable after checking

    def call(self, node: ast.Call) -> Any:
        func = node.func
        if isinstance(func, ast.Name):
            impl = FUNCTIONS[func.id][0]
            return impl(*[self.eval(arg) for arg in node.args])
        assert isinstance(func, ast.Attribute)
        receiver = self.eval(func.value)
        args = [self.eval(arg) for arg in node.args]
        spec = method_table(receiver).get(func.attr)
        if spec is None:
            where = "None" if receiver is None else f"a {kind(receiver)} value"
            raise Problem(f"{func.attr}() cannot be called on {where}")
        method, low, high = spec
        problem = arity_problem(func.attr, low, high, len(args))
        if problem is not None:
            raise Problem(problem)
        return method(receiver, *args)


def _key(container: Any, key: Any) -> Any:
    """``container[key]`` for mappings and sequences, with readable errors."""
    if isinstance(container, Mapping):
        try:
            return container[key]
        except KeyError:
            raise Problem(f"unknown key {key!r}") from None
    if isinstance(container, (list, tuple, str)):
        if isinstance(key, bool) or not isinstance(key, int):
            raise Problem(f"{kind(container)} index must be an integer, not {kind(key)}")
        try:
            return container[key]
        except IndexError:
            raise Problem(f"index {key} out of range (length {len(container)})") from None
    where = "None" if container is None else f"a {kind(container)} value"
    raise Problem(f"cannot look up {key!r} in {where}")


def _binop(op: ast.operator, left: Any, right: Any) -> Any:
    if isinstance(op, ast.Add):
        return left + right
    if isinstance(op, ast.Sub):
        return left - right
    if isinstance(op, ast.Mult):
        return _multiply(left, right)
    if isinstance(op, ast.Div):
        return left / right
    if isinstance(op, ast.FloorDiv):
        return left // right
    if isinstance(op, ast.Mod):
        if isinstance(left, str):
            raise Problem("string formatting with '%' is not allowed")
        return left % right
    if isinstance(op, ast.Pow):
        return _power(left, right)
    raise Problem(f"operator {type(op).__name__} is not allowed")  # unreachable after checking


def _multiply(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(count, int) and count > 0:
            limit = _limits.MAX_REPEAT // count
            if _bounded_size(seq, limit) > limit:
                raise Problem(
                    f"repeating a {kind(seq)} {count} times would be too large "
                    f"(the limit is {_limits.MAX_REPEAT} items or characters)"
                )
            break
    return left * right


def _bounded_size(value: Any, limit: int) -> int:
    """Characters plus items of ``value``, counting nested containers; stops above ``limit``."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += len(item)
            stack.extend(item)
        elif isinstance(item, Mapping):
            total += len(item)
            for key, sub in item.items():
                stack.append(key)
                stack.append(sub)
                if len(stack) > limit:
                    break
    return total


def _power(base: Any, exponent: Any) -> Any:
    numbers = (int, float)
    if isinstance(base, numbers) and isinstance(exponent, numbers):
        if abs(exponent) > _limits.MAX_EXPONENT:
            raise Problem(f"exponent {exponent} is too large (the limit is {_limits.MAX_EXPONENT})")
        if (
            isinstance(base, int)
            and isinstance(exponent, int)
            and abs(base).bit_length() * exponent > _limits.MAX_INT_BITS
        ):
            raise Problem(f"result of ** is too large (more than {_limits.MAX_INT_BITS} bits)")
    return base**exponent


def _check_int(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > _limits.MAX_INT_BITS:
        raise Problem(f"integer result is too large (more than {_limits.MAX_INT_BITS} bits)")
    return value
