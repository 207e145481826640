"""Source text to a checked syntax tree: the whitelist.

The text is parsed with ``ast.parse(..., mode="eval")`` (wrapped in parentheses when that lets
it span lines), its size and depth are measured, and every node is checked against the
constructs listed in docs/expressions.md. Nothing is evaluated here; anything refused raises
:class:`~agentfn.expressions._errors.CompileError` with a 1-based position in the source.
"""

from __future__ import annotations

import ast
import re
import threading
import warnings
from typing import NoReturn

from agentfn.expressions import _limits
from agentfn.expressions._errors import CompileError
from agentfn.expressions._functions import FUNCTIONS, METHOD_NAMES, arity_problem

_NEWLINE = re.compile(r"\r\n|\r|\n")
_PARSE_LOCK = threading.Lock()


Key = tuple[str, str]
"""A static key read from a top-level name: ``input.topic`` or ``steps['plan']``."""


def check(source: str) -> tuple[ast.expr, frozenset[str], frozenset[Key]]:
    """The checked body of ``source``, the free top-level names it uses and the static keys
    it reads from them (so a blueprint can check ``input.tiket`` before any run)."""
    if len(source) > _limits.MAX_SOURCE_LENGTH:
        raise CompileError(
            f"expression is too long: {len(source)} characters "
            f"(the limit is {_limits.MAX_SOURCE_LENGTH})"
        )
    if not source.strip():
        raise CompileError("expression is empty")
    if "\x00" in source:
        raise CompileError(
            "syntax error in expression: null character", index_position(source, source.find("\0"))
        )
    try:
        tree, text = _parse_source(source)
    except UnicodeError as exc:
        index = getattr(exc, "start", 0)
        raise CompileError(
            "syntax error in expression: text is not valid Unicode",
            index_position(source, index if isinstance(index, int) else 0),
        ) from None
    except (ValueError, OverflowError) as exc:
        raise CompileError(f"syntax error in expression: {exc}") from None
    _check_size(tree.body, text)
    checker = _Checker(text)
    checker.visit(tree.body)
    return tree.body, frozenset(checker.names), frozenset(checker.keys)


def index_position(text: str, index: int) -> tuple[int, int]:
    """The 1-based (line, column) of character ``index`` in ``text``."""
    before = text[:index]
    parts = _NEWLINE.split(before)
    return len(parts), len(parts[-1]) + 1


# --------------------------------------------------------------------------- parsing


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


def _syntax_error(exc: SyntaxError, source: str, *, wrapped: bool) -> CompileError:
    message = f"syntax error in expression: {exc.msg}"
    if exc.lineno is None or exc.lineno < 1:
        return CompileError(message, (1, 1))
    lines = _NEWLINE.split(source)
    line, col = exc.lineno, exc.offset or 1
    if wrapped:
        if line > len(lines):
            line, col = len(lines), len(lines[-1]) + 1
        elif line == 1:
            col -= 1
    return CompileError(message, (line, max(col, 1)))


# --------------------------------------------------------------------------- checking

_NOT_COUNTED = (ast.expr_context, ast.operator, ast.boolop, ast.unaryop, ast.cmpop)


def _check_size(body: ast.expr, text: _Text) -> None:
    """Count nodes and measure depth without recursion (the tree may be very deep)."""
    stack: list[tuple[ast.AST, int]] = [(body, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > _limits.MAX_NODES:
            raise CompileError(
                f"expression is too complex (more than {_limits.MAX_NODES} syntax nodes)"
            )
        if depth > _limits.MAX_DEPTH:
            raise CompileError(
                f"expression is nested too deeply (more than {_limits.MAX_DEPTH} levels)",
                text.start(node),
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
        self.keys: set[Key] = set()

    def fail(self, where: ast.AST | tuple[int, int], message: str) -> NoReturn:
        position = where if isinstance(where, tuple) else self.text.start(where)
        raise CompileError(f"{_UNSAFE}: {message}", position)

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
            if isinstance(node.value, ast.Name):
                self.keys.add((node.value.id, node.attr))
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
            if (
                isinstance(node.value, ast.Name)
                and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, str)
            ):
                self.keys.add((node.value.id, node.slice.value))
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
            if len(value) > _limits.MAX_STRING_LITERAL:
                self.fail(
                    node,
                    f"string literal is too long: {len(value)} characters "
                    f"(the limit is {_limits.MAX_STRING_LITERAL})",
                )
        elif isinstance(value, int):  # bool included
            if value.bit_length() > _limits.MAX_INT_BITS:
                self.fail(
                    node, f"integer literal is too large (more than {_limits.MAX_INT_BITS} bits)"
                )
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
            spec = FUNCTIONS.get(func.id)
            if spec is None:
                self.fail(func, f"call to unknown function {func.id!r}")
            arity = (spec[1], spec[2])
        elif isinstance(func, ast.Attribute):
            position = self.attribute_position(func)
            if func.attr.startswith("_"):
                self.refuse(position, f"attribute {func.attr!r} starting with '_'")
            if func.attr not in METHOD_NAMES:
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
            problem = arity_problem(func.id, arity[0], arity[1], len(node.args))
            if problem is not None:
                raise CompileError(f"invalid expression: {problem}", self.text.start(func))
