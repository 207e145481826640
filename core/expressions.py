"""Safe expressions and ``{{ ... }}`` templates for workflow blueprints.

Users write edge conditions (``steps.review.output.score >= 0.8``) and prompt templates
(``"Summarise {{ input.topic }}"``), so this text is untrusted. It never reaches ``eval``,
``exec`` or ``compile``: it is parsed with ``ast.parse(..., mode="eval")``, every node is
checked against a whitelist, and this module walks the tree itself. ``a.b`` is a key lookup on
a mapping (never ``getattr``), calls reach only the functions and methods listed below, and
size limits stop an expression from exhausting CPU or memory. Every failure, at compile time or
while evaluating, is a :class:`agentfn.errors.ExpressionError`.
"""

from __future__ import annotations

import ast
import json
import operator
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NoReturn

from agentfn.errors import ExpressionError

__all__ = [
    "Expression",
    "Template",
    "compile_expression",
    "compile_template",
    "evaluate",
    "render",
]

# --------------------------------------------------------------------------- limits

MAX_SOURCE_LENGTH = 2000
MAX_NODES = 300
MAX_DEPTH = 50
MAX_STRING_LITERAL = 10_000
MAX_EXPONENT = 100
MAX_INT_BITS = 4096
MAX_REPEAT = 100_000
# How much join() separators or str.replace() may add to a string; the inputs themselves may be
# larger (step outputs), only growth made by the expression is bounded.
MAX_GROWTH = 1_000_000
MAX_ROUND_DIGITS = 100

_RUNTIME_ERRORS = (
    LookupError,
    TypeError,
    ValueError,
    ArithmeticError,
    RecursionError,
    MemoryError,
)

# --------------------------------------------------------------------------- public API


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled, validated expression. Build it with :func:`compile_expression`."""

    source: str
    names: frozenset[str]
    _body: ast.expr = field(repr=False, compare=False)

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        """Evaluate against ``names``; any failure is an ``ExpressionError``."""
        try:
            return _Evaluator(names).eval(self._body)
        except _Problem as exc:
            raise ExpressionError(f"in {_quote(self.source)}: {exc.message}") from None
        except _RUNTIME_ERRORS as exc:
            raise ExpressionError(f"in {_quote(self.source)}: {_describe(exc)}") from exc


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
                out.append(_to_text(value))
            except _RUNTIME_ERRORS as exc:
                raise ExpressionError(
                    f"in {_quote(part.source)}: cannot render the value: {_describe(exc)}"
                ) from exc
        return "".join(out)


def compile_expression(source: str) -> Expression:
    """Parse and validate ``source``; results (and failures) are cached."""
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be a string, not {_kind(source)}")
    result = _compile_cached(source)
    if isinstance(result, _Failure):
        raise ExpressionError(result.text())
    return result


def evaluate(source: str, names: Mapping[str, Any]) -> Any:
    """Compile (cached) and evaluate ``source`` against ``names``."""
    return compile_expression(source).evaluate(names)


def compile_template(text: str) -> Template:
    """Split ``text`` into literal text and ``{{ expr }}`` segments and compile each one."""
    if not isinstance(text, str):
        raise ExpressionError(f"a template must be a string, not {_kind(text)}")
    result = _compile_template_cached(text)
    if isinstance(result, str):
        raise ExpressionError(result)
    return result


def render(text: str, names: Mapping[str, Any]) -> Any:
    """Compile (cached) and render ``text`` against ``names``."""
    return compile_template(text).render(names)


# --------------------------------------------------------------------------- compiling


@dataclass(frozen=True, slots=True)
class _Failure:
    """A cached compile failure; ``line``/``column`` are 1-based and relative to the source."""

    message: str
    line: int | None = None
    column: int | None = None

    def text(self) -> str:
        if self.line is None or self.column is None:
            return self.message
        return f"{self.message} (line {self.line}, column {self.column})"


class _CompileError(Exception):
    def __init__(self, message: str, position: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position

    def failure(self) -> _Failure:
        if self.position is None:
            return _Failure(self.message)
        return _Failure(self.message, *self.position)


_NEWLINE = re.compile(r"\r\n|\r|\n")
_PARSE_LOCK = threading.Lock()


def _parse(text: str) -> ast.Expression:
    # Invalid escapes etc. emit warnings at parse time; they are noise for user text. The lock
    # keeps concurrent catch_warnings() blocks from corrupting the global filter list.
    with _PARSE_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(text, mode="eval")


class _Text:
    """Maps AST positions (UTF-8 byte columns) of the parsed text to 1-based source positions.

    ``shift`` is 1 when the source was parsed wrapped in parentheses (for multi-line input).
    """

    def __init__(self, parsed: str, shift: int) -> None:
        self.lines = _NEWLINE.split(parsed)
        self.shift = shift

    def char_col(self, lineno: int, byte_col: int) -> int:
        if not 1 <= lineno <= len(self.lines):
            return byte_col
        data = self.lines[lineno - 1].encode("utf-8", "surrogatepass")[:byte_col]
        return len(data.decode("utf-8", "replace"))

    def position(self, lineno: int, char_col: int) -> tuple[int, int]:
        col = char_col + 1 - (self.shift if lineno == 1 else 0)
        return lineno, max(col, 1)

    def start(self, node: ast.AST) -> tuple[int, int]:
        lineno: int = getattr(node, "lineno", 1)
        return self.position(lineno, self.char_col(lineno, getattr(node, "col_offset", 0)))

    def find(
        self, after: tuple[int, int] | None, before: tuple[int, int], token: str
    ) -> tuple[int, int] | None:
        """Position of ``token`` between two (line, byte column) points, outside comments."""
        if after is None:
            return None
        line, col = after[0], self.char_col(*after)
        last_line, last_col = before[0], self.char_col(*before)
        while line <= last_line and line <= len(self.lines):
            text = self.lines[line - 1]
            stop = last_col if line == last_line else len(text)
            segment = text[col:stop].split("#", 1)[0]
            found = segment.find(token)
            if found >= 0:
                return self.position(line, col + found)
            line, col = line + 1, 0
        return None


def _begin(node: ast.expr) -> tuple[int, int]:
    return node.lineno, node.col_offset


def _end(node: ast.expr) -> tuple[int, int] | None:
    if node.end_lineno is None or node.end_col_offset is None:
        return None
    return node.end_lineno, node.end_col_offset


def _parse_source(source: str) -> tuple[ast.Expression, _Text]:
    """Parse ``source``; on failure try it wrapped in parentheses so it may span lines."""
    try:
        return _parse(source), _Text(source, 0)
    except SyntaxError as exc:
        first = exc
    wrapped = "(" + source + "\n)"
    try:
        tree = _parse(wrapped)
    except SyntaxError as exc:
        if isinstance(first, IndentationError) or not first.offset:
            raise _syntax_error(exc, source, wrapped=True) from None
        raise _syntax_error(first, source, wrapped=False) from None
    body = tree.body
    if body.lineno == 1 and body.col_offset == 0:
        # The opening parenthesis we added was closed inside the source ("a) + (b").
        raise _syntax_error(first, source, wrapped=False)
    return tree, _Text(wrapped, 1)


def _syntax_error(exc: SyntaxError, source: str, *, wrapped: bool) -> _CompileError:
    message = f"syntax error in expression: {exc.msg}"
    if exc.lineno is None or exc.lineno < 1:
        return _CompileError(message, (1, 1))
    lines = _NEWLINE.split(source)
    line, col = exc.lineno, exc.offset or 1
    if wrapped:
        if line > len(lines):
            line, col = len(lines), len(lines[-1]) + 1
        elif line == 1:
            col -= 1
    return _CompileError(message, (line, max(col, 1)))


def _index_position(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    parts = _NEWLINE.split(before)
    return len(parts), len(parts[-1]) + 1


@lru_cache(maxsize=1024)
def _compile_cached(source: str) -> Expression | _Failure:
    try:
        return _compile(source)
    except _CompileError as exc:
        return exc.failure()
    except (RecursionError, MemoryError):
        return _Failure(f"expression is nested too deeply (the limit is {MAX_DEPTH} levels)")
    except Exception as exc:  # never let an odd input escape as anything but ExpressionError
        return _Failure(f"invalid expression: {type(exc).__name__}: {exc}")


def _compile(source: str) -> Expression:
    if len(source) > MAX_SOURCE_LENGTH:
        raise _CompileError(
            f"expression is too long: {len(source)} characters (the limit is {MAX_SOURCE_LENGTH})"
        )
    if not source.strip():
        raise _CompileError("expression is empty")
    if "\x00" in source:
        raise _CompileError(
            "syntax error in expression: null character", _index_position(source, source.find("\0"))
        )
    try:
        tree, text = _parse_source(source)
    except UnicodeError as exc:
        index = getattr(exc, "start", 0)
        raise _CompileError(
            "syntax error in expression: text is not valid Unicode",
            _index_position(source, index if isinstance(index, int) else 0),
        ) from None
    except (ValueError, OverflowError) as exc:
        raise _CompileError(f"syntax error in expression: {exc}") from None
    _check_size(tree.body, text)
    checker = _Checker(text)
    checker.visit(tree.body)
    return Expression(source, frozenset(checker.names), tree.body)


_NOT_COUNTED = (ast.expr_context, ast.operator, ast.boolop, ast.unaryop, ast.cmpop)


def _check_size(body: ast.expr, text: _Text) -> None:
    """Count nodes and measure depth without recursion (the tree may be very deep)."""
    stack: list[tuple[ast.AST, int]] = [(body, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise _CompileError(f"expression is too complex (more than {MAX_NODES} syntax nodes)")
        if depth > MAX_DEPTH:
            raise _CompileError(
                f"expression is nested too deeply (more than {MAX_DEPTH} levels)", text.start(node)
            )
        stack.extend(
            (child, depth + 1)
            for child in ast.iter_child_nodes(node)
            if not isinstance(child, _NOT_COUNTED)
        )


_CONSTRUCTS: dict[type[ast.AST], str] = {
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.Lambda: "lambda",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.NamedExpr: "walrus operator (:=)",
    ast.Starred: "starred expression (*)",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield from",
    ast.Slice: "slice outside a subscript",
}

_REFUSED_OPERATORS: dict[type[ast.AST], tuple[str, str]] = {
    ast.BitAnd: ("bitwise and (&)", "&"),
    ast.BitOr: ("bitwise or (|)", "|"),
    ast.BitXor: ("bitwise xor (^)", "^"),
    ast.LShift: ("left shift (<<)", "<<"),
    ast.RShift: ("right shift (>>)", ">>"),
    ast.MatMult: ("matrix multiplication (@)", "@"),
}

_UNSAFE = "unsafe expression"


class _Checker:
    """Walks the tree against the whitelist and collects the free names."""

    def __init__(self, text: _Text) -> None:
        self.text = text
        self.names: set[str] = set()

    def fail(self, where: ast.AST | tuple[int, int], message: str) -> NoReturn:
        position = where if isinstance(where, tuple) else self.text.start(where)
        raise _CompileError(f"{_UNSAFE}: {message}", position)

    def refuse(self, where: ast.AST | tuple[int, int], construct: str) -> NoReturn:
        self.fail(where, f"{construct} is not allowed")

    def attribute_position(self, node: ast.Attribute) -> tuple[int, int]:
        if node.end_lineno is None or node.end_col_offset is None:
            return self.text.start(node)
        col = self.text.char_col(node.end_lineno, node.end_col_offset) - len(node.attr)
        return self.text.position(node.end_lineno, col)

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            self.visit_constant(node)
        elif isinstance(node, ast.Name):
            if node.id.startswith("_"):
                self.refuse(node, f"name {node.id!r} starting with '_'")
            self.names.add(node.id)
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                self.refuse(
                    self.attribute_position(node), f"attribute {node.attr!r} starting with '_'"
                )
            self.visit(node.value)
        elif isinstance(node, ast.Call):
            self.visit_call(node)
        elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            for elt in node.elts:
                self.visit(elt)
        elif isinstance(node, ast.Dict):
            self.visit_dict(node)
        elif isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Invert):
                self.refuse(node, "bitwise not (~)")
            self.visit(node.operand)
        elif isinstance(node, ast.BinOp):
            refused = _REFUSED_OPERATORS.get(type(node.op))
            if refused is not None:
                construct, token = refused
                where = self.text.find(_end(node.left), _begin(node.right), token)
                self.refuse(where or node, construct)
            self.visit(node.left)
            self.visit(node.right)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self.visit(value)
        elif isinstance(node, ast.Compare):
            self.visit(node.left)
            for comparator in node.comparators:
                self.visit(comparator)
        elif isinstance(node, ast.IfExp):
            self.visit(node.test)
            self.visit(node.body)
            self.visit(node.orelse)
        elif isinstance(node, ast.Subscript):
            self.visit(node.value)
            if isinstance(node.slice, ast.Slice):
                for part in (node.slice.lower, node.slice.upper, node.slice.step):
                    if part is not None:
                        self.visit(part)
            else:
                self.visit(node.slice)
        elif isinstance(node, ast.NamedExpr):
            where = self.text.find(_end(node.target), _begin(node.value), ":=")
            self.refuse(where or node, _CONSTRUCTS[ast.NamedExpr])
        else:
            construct = _CONSTRUCTS.get(type(node), type(node).__name__)
            self.refuse(node, construct)

    def visit_constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, str):
            if len(value) > MAX_STRING_LITERAL:
                self.fail(
                    node,
                    f"string literal is too long: {len(value)} characters "
                    f"(the limit is {MAX_STRING_LITERAL})",
                )
        elif isinstance(value, int):  # bool included
            if value.bit_length() > MAX_INT_BITS:
                self.fail(node, f"integer literal is too large (more than {MAX_INT_BITS} bits)")
        elif isinstance(value, bytes):
            self.refuse(node, "bytes literal")
        elif isinstance(value, complex):
            self.refuse(node, "imaginary number literal")
        elif value is Ellipsis:
            self.refuse(node, "ellipsis (...)")
        elif value is not None and not isinstance(value, float):
            self.refuse(node, f"{type(value).__name__} literal")

    def visit_dict(self, node: ast.Dict) -> None:
        after: tuple[int, int] | None = (node.lineno, node.col_offset + 1)  # just inside "{"
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                self.refuse(
                    self.text.find(after, _begin(value), "**") or value, "dict unpacking (**)"
                )
            self.visit(key)
            self.visit(value)
            after = _end(value)

    def visit_call(self, node: ast.Call) -> None:
        func = node.func
        arity: tuple[int, int | None] | None = None
        if isinstance(func, ast.Name):
            if func.id.startswith("_"):
                self.refuse(func, f"name {func.id!r} starting with '_'")
            spec = _FUNCTIONS.get(func.id)
            if spec is None:
                self.fail(func, f"call to unknown function {func.id!r}")
            arity = (spec[1], spec[2])
        elif isinstance(func, ast.Attribute):
            position = self.attribute_position(func)
            if func.attr.startswith("_"):
                self.refuse(position, f"attribute {func.attr!r} starting with '_'")
            if func.attr not in _METHOD_NAMES:
                self.fail(position, f"call to unknown method {func.attr!r}")
            self.visit(func.value)
        else:
            self.refuse(func, "calling a computed value")
        for keyword in node.keywords:
            if keyword.arg is None:
                self.refuse(keyword, "keyword argument unpacking (**)")
            self.refuse(keyword, f"keyword argument {keyword.arg!r}")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.refuse(arg, "argument unpacking (*)")
            self.visit(arg)
        if isinstance(func, ast.Name) and arity is not None:
            problem = _arity_problem(func.id, arity[0], arity[1], len(node.args))
            if problem is not None:
                raise _CompileError(f"invalid expression: {problem}", self.text.start(func))


def _arity_problem(name: str, low: int, high: int | None, given: int) -> str | None:
    if low <= given and (high is None or given <= high):
        return None
    if high is None:
        expected = f"at least {low} argument{'s' if low != 1 else ''}"
    elif low == high:
        expected = f"{low} argument{'s' if low != 1 else ''}"
    else:
        expected = f"{low} to {high} arguments"
    return f"{name}() takes {expected} ({given} given)"


# --------------------------------------------------------------------------- evaluating


class _Problem(Exception):
    """A runtime failure with a user-facing message; wrapped with the source by the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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


class _Evaluator:
    __slots__ = ("names",)

    def __init__(self, names: Mapping[str, Any]) -> None:
        self.names = names

    def eval(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Attribute):
            value = self.eval(node.value)
            if isinstance(value, Mapping):
                return _key(value, node.attr)
            where = "None" if value is None else f"a {_kind(value)} value"
            raise _Problem(f"cannot look up {node.attr!r} on {where}")
        if isinstance(node, ast.Name):
            try:
                return self.names[node.id]
            except KeyError:
                raise _Problem(f"unknown name {node.id!r}") from None
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
                    raise _Problem(f"cannot slice a {_kind(container)} value")
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
        raise _Problem(f"cannot evaluate {type(node).__name__}")  # unreachable after checking

    def call(self, node: ast.Call) -> Any:
        func = node.func
        if isinstance(func, ast.Name):
            impl = _FUNCTIONS[func.id][0]
            return impl(*[self.eval(arg) for arg in node.args])
        assert isinstance(func, ast.Attribute)
        receiver = self.eval(func.value)
        args = [self.eval(arg) for arg in node.args]
        if isinstance(receiver, str):
            table = _STR_METHODS
        elif isinstance(receiver, Mapping):
            table = _MAPPING_METHODS
        elif isinstance(receiver, (list, tuple)):
            table = _SEQUENCE_METHODS
        else:
            table = {}
        spec = table.get(func.attr)
        if spec is None:
            where = "None" if receiver is None else f"a {_kind(receiver)} value"
            raise _Problem(f"{func.attr}() cannot be called on {where}")
        method, low, high = spec
        problem = _arity_problem(func.attr, low, high, len(args))
        if problem is not None:
            raise _Problem(problem)
        return method(receiver, *args)


def _key(container: Any, key: Any) -> Any:
    """``container[key]`` for mappings and sequences, with readable errors."""
    if isinstance(container, Mapping):
        try:
            return container[key]
        except KeyError:
            raise _Problem(f"unknown key {key!r}") from None
    if isinstance(container, (list, tuple, str)):
        if isinstance(key, bool) or not isinstance(key, int):
            raise _Problem(f"{_kind(container)} index must be an integer, not {_kind(key)}")
        try:
            return container[key]
        except IndexError:
            raise _Problem(f"index {key} out of range (length {len(container)})") from None
    where = "None" if container is None else f"a {_kind(container)} value"
    raise _Problem(f"cannot look up {key!r} in {where}")


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
            raise _Problem("string formatting with '%' is not allowed")
        return left % right
    if isinstance(op, ast.Pow):
        return _power(left, right)
    raise _Problem(f"operator {type(op).__name__} is not allowed")  # unreachable after checking


def _multiply(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(count, int) and count > 0:
            limit = MAX_REPEAT // count
            if _bounded_size(seq, limit) > limit:
                raise _Problem(
                    f"repeating a {_kind(seq)} {count} times would be too large "
                    f"(the limit is {MAX_REPEAT} items or characters)"
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
        if abs(exponent) > MAX_EXPONENT:
            raise _Problem(f"exponent {exponent} is too large (the limit is {MAX_EXPONENT})")
        if (
            isinstance(base, int)
            and isinstance(exponent, int)
            and abs(base).bit_length() * exponent > MAX_INT_BITS
        ):
            raise _Problem(f"result of ** is too large (more than {MAX_INT_BITS} bits)")
    return base**exponent


def _check_int(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _Problem(f"integer result is too large (more than {MAX_INT_BITS} bits)")
    return value


# --------------------------------------------------------------------------- functions


def _want_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _Problem(f"{name}() expects a string, not {_kind(value)}")
    return value


def _want_mapping(name: str, value: Any) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise _Problem(f"{name}() expects a mapping, not {_kind(value)}")
    return value


def _fn_round(number: Any, digits: Any = None) -> Any:
    if digits is None:
        return round(number)
    if isinstance(digits, int) and abs(digits) > MAX_ROUND_DIGITS:
        raise _Problem(f"round() digits must be between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}")
    return round(number, digits)


def _fn_int(value: Any) -> Any:
    # Decimal parsing is quadratic; anything this long is above MAX_INT_BITS anyway.
    if isinstance(value, str) and len(value) > 2 * MAX_INT_BITS:
        raise _Problem(f"int() argument is too long ({len(value)} characters)")
    return int(value)


def _fn_sum(items: Any) -> Any:
    return sum(items)


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
            raise _Problem(f"get() index must be an integer, not {_kind(key)}")
        try:
            return container[key]
        except IndexError:
            return default
    raise _Problem(f"get() expects a mapping or a list, not {_kind(container)}")


def _fn_join(sep: Any, items: Any) -> str:
    separator = _want_str("join", sep)
    if isinstance(items, Mapping) or not isinstance(items, Iterable):
        raise _Problem(f"join() expects a list, not {_kind(items)}")
    parts = [_to_text(item) for item in items]
    if len(separator) * max(len(parts) - 1, 0) > MAX_GROWTH:
        raise _Problem("join() result would be too large")
    return separator.join(parts)


def _fn_split(text: Any, sep: Any = None) -> list[str]:
    return _want_str("split", text).split(sep)


def _fn_default(value: Any, fallback: Any) -> Any:
    return fallback if value is None else value


def _str_replace(text: str, old: Any, new: Any, count: Any = -1) -> str:
    if isinstance(old, str) and isinstance(new, str) and isinstance(count, int):
        occurrences = len(text) + 1 if old == "" else text.count(old)
        if count >= 0:
            occurrences = min(occurrences, count)
        if occurrences * (len(new) - len(old)) > MAX_GROWTH:
            raise _Problem("replace() result would be too large")
    return text.replace(old, new, count)


_Spec = tuple[Callable[..., Any], int, int | None]

_FUNCTIONS: dict[str, _Spec] = {
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


def _mapping_get(mapping: Mapping[Any, Any], key: Any, default: Any = None) -> Any:
    try:
        return mapping[key]
    except KeyError:
        return default


_STR_METHODS: dict[str, _Spec] = {
    "lower": (str.lower, 0, 0),
    "upper": (str.upper, 0, 0),
    "strip": (str.strip, 0, 1),
    "startswith": (str.startswith, 1, 3),
    "endswith": (str.endswith, 1, 3),
    "split": (str.split, 0, 2),
    "replace": (_str_replace, 2, 3),
    "count": (str.count, 1, 3),
}

_MAPPING_METHODS: dict[str, _Spec] = {
    "get": (_mapping_get, 1, 2),
    "keys": (lambda m: list(m.keys()), 0, 0),
    "values": (lambda m: list(m.values()), 0, 0),
    "items": (lambda m: list(m.items()), 0, 0),
}

_SEQUENCE_METHODS: dict[str, _Spec] = {
    "count": (lambda seq, item: seq.count(item), 1, 1),
    "index": (lambda seq, *args: seq.index(*args), 1, 3),
}

_METHOD_NAMES = frozenset(_STR_METHODS) | frozenset(_MAPPING_METHODS) | frozenset(_SEQUENCE_METHODS)


# --------------------------------------------------------------------------- templates


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
            line, column = _index_position(text, start)
            return f"unclosed '{{{{' in template (line {line}, column {column})"
        inner = text[start + 2 : close]
        expr_at = start + 2 + len(inner) - len(inner.lstrip())
        result = _compile_cached(inner.strip())
        if isinstance(result, _Failure):
            return _template_failure(text, start, expr_at, result)
        parts.append(result)
        position = close + 2
    expressions = tuple(part for part in parts if isinstance(part, Expression))
    native = len(expressions) == 1 and all(
        isinstance(part, Expression) or not part.strip() for part in parts
    )
    return Template(text, expressions, tuple(parts), native)


def _template_failure(text: str, start: int, expr_at: int, failure: _Failure) -> str:
    if failure.line is None or failure.column is None:
        line, column = _index_position(text, start)
    else:
        base_line, base_column = _index_position(text, expr_at)
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
    end = min(len(text), index + MAX_SOURCE_LENGTH + 2)
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
    quote = text[i]
    triple = text.startswith(quote * 3, i)
    j = i + (3 if triple else 1)
    while j < end:
        char = text[j]
        if char == "\\":
            j += 2
        elif triple and text.startswith(quote * 3, j):
            return j + 3
        elif not triple and char == quote:
            return j + 1
        elif not triple and char == "\n":
            return None
        else:
            j += 1
    return None


def _to_text(value: Any) -> str:
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


# --------------------------------------------------------------------------- helpers


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, Mapping):
        return "dict" if isinstance(value, dict) else "mapping"
    return type(value).__name__


def _quote(source: str) -> str:
    shown = source if len(source) <= 120 else source[:117] + "..."
    return repr(shown)


def _describe(exc: BaseException) -> str:
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
