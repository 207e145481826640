"""Tests for agentfn.expressions: the whitelist evaluator, its limits, and templates."""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from hypothesis import assume, given, settings, strategies as st

from agentfn.errors import ExpressionError
from agentfn.expressions import (
    Expression,
    Template,
    _expression,
    _limits,
    compile_expression,
    compile_template,
    evaluate,
    render,
)


class LazyMapping(Mapping[str, Any]):
    """Loads each value on first access, like the engine's step-output mapping."""

    def __init__(self, loaders: dict[str, Callable[[], Any]]) -> None:
        self._loaders = loaders
        self._cache: dict[str, Any] = {}
        self.loaded: list[str] = []

    def __getitem__(self, key: str) -> Any:
        if key not in self._loaders:
            raise KeyError(key)
        if key not in self._cache:
            self.loaded.append(key)
            self._cache[key] = self._loaders[key]()
        return self._cache[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)


def _explode() -> Any:
    raise AssertionError("this step must not be loaded")


def make_names() -> dict[str, Any]:
    steps = LazyMapping(
        {
            "review": lambda: {"output": {"score": 0.9, "text": "Looks good, I APPROVE."}},
            "research": lambda: {"output": {"facts": ["a", "b"], "count": 2}},
            "never": _explode,
        }
    )
    return {
        "steps": steps,
        "input": {"topic": "otters", "n": 3, "tags": ["x", "y"], "empty": None},
        "x": 7,
        "s": "  Hello World  ",
        "l": [3, 1, 2],
        "t": (1, 2, 2),
        "d": {"a": 1, "b": None},
        "n": None,
        "yes": True,
        "no": False,
    }


# --------------------------------------------------------------------------- allowed

ALLOWED: list[tuple[str, Any]] = [
    # literals
    ("1", 1),
    ("-2.5", -2.5),
    ("'hi'", "hi"),
    ('"a" "b"', "ab"),
    ("True", True),
    ("None", None),
    ("[1, 'a', None]", [1, "a", None]),
    ("(1, 2)", (1, 2)),
    ("()", ()),
    ("{'a': 1, 'b': [2]}", {"a": 1, "b": [2]}),
    ("{1, 2, 2}", {1, 2}),
    # arithmetic
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("7 / 2", 3.5),
    ("7 // 2", 3),
    ("-7 % 3", 2),
    ("2 ** 10", 1024),
    ("2 ** -1", 0.5),
    ("10 ** 100 > 10 ** 99", True),
    ("+x", 7),
    ("-x", -7),
    ("'ab' * 3", "ababab"),
    ("3 * [0]", [0, 0, 0]),
    ("'a' + 'b'", "ab"),
    ("l + [4]", [3, 1, 2, 4]),
    # comparisons
    ("x == 7", True),
    ("x != 7", False),
    ("1 < x <= 7", True),
    ("1 < x < 5", False),
    ("3 > 2 > 1", True),
    ("x >= 8", False),
    ("'a' in 'cat'", True),
    ("'z' not in 'cat'", True),
    ("3 in l", True),
    ("'a' in d", True),
    ("'review' in steps", True),
    ("n is None", True),
    ("x is not None", True),
    # boolean logic returns operands, like Python
    ("yes and x", 7),
    ("no or 'fallback'", "fallback"),
    ("n or d.a", 1),
    ("not x", False),
    ("not n", True),
    ("x > 1 and x < 10", True),
    ("1 if yes else 2", 1),
    ("1 if n else 2", 2),
    # lookups
    ("input.topic", "otters"),
    ("input['topic']", "otters"),
    ("input.tags[1]", "y"),
    ("input.tags[-1]", "y"),
    ("l[0:2]", [3, 1]),
    ("l[1:]", [1, 2]),
    ("l[::-1]", [2, 1, 3]),
    ("s[2:7]", "Hello"),
    ("t[1]", 2),
    ("d.b", None),
    ("d['b'] is None", True),
    ("input.empty", None),
    ("steps.review.output.score", 0.9),
    ("steps['research'].output.facts[0]", "a"),
    (
        "steps.review.output.score >= 0.8 and 'approve' in steps.review.output.text.lower()",
        True,
    ),
    # functions
    ("len(l)", 3),
    ("len(steps)", 3),
    ("str(x)", "7"),
    ("int('42')", 42),
    ("int(3.9)", 3),
    ("float('1.5')", 1.5),
    ("bool('')", False),
    ("abs(-3)", 3),
    ("min(l)", 1),
    ("max(4, x, 5)", 7),
    ("round(2.567, 2)", 2.57),
    ("round(2.5)", 2),
    ("sum(l)", 6),
    ("any([0, 1])", True),
    ("all([1, 0])", False),
    ("sorted(l)", [1, 2, 3]),
    ("flatten([[1, 2], [], [3], 4])", [1, 2, 3, 4]),
    ("flatten([[[1]], 2])", [[1], 2]),
    ("sorted(steps)", ["never", "research", "review"]),
    ("lower('AbC')", "abc"),
    ("upper('abc')", "ABC"),
    ("strip(s)", "Hello World"),
    ("contains(l, 2)", True),
    ("contains('team', 'ea')", True),
    ("startswith('hello', 'he')", True),
    ("endswith('hello', 'lo')", True),
    ("get(d, 'a')", 1),
    ("get(d, 'zzz')", None),
    ("get(d, 'zzz', 5)", 5),
    ("get(l, 1)", 1),
    ("get(l, 10, 'none')", "none"),
    ("get(n, 'k', 'dflt')", "dflt"),
    ("get(steps, 'missing', 0)", 0),
    ("keys(d)", ["a", "b"]),
    ("values(d)", [1, None]),
    ("join(', ', input.tags)", "x, y"),
    ("join('-', [1, None, 'a', [2]])", "1--a-[2]"),
    ("split('a b  c')", ["a", "b", "c"]),
    ("split('a,b', ',')", ["a", "b"]),
    ("default(n, 'fallback')", "fallback"),
    ("default(0, 'fallback')", 0),
    ("default(d.b, x)", 7),
    # methods
    ("s.strip().lower()", "hello world"),
    ("s.upper()", "  HELLO WORLD  "),
    ("s.strip('  Hd')", "ello Worl"),
    ("'abc'.startswith('ab')", True),
    ("'abc'.endswith('bc')", True),
    ("'a,b,c'.split(',')", ["a", "b", "c"]),
    ("'a,b,c'.split(',', 1)", ["a", "b,c"]),
    ("'aaa'.replace('a', 'b', 2)", "bba"),
    ("'banana'.count('a')", 3),
    ("d.get('a')", 1),
    ("d.get('zzz', 'dflt')", "dflt"),
    ("d.keys()", ["a", "b"]),
    ("d.values()", [1, None]),
    ("d.items()", [("a", 1), ("b", None)]),
    ("steps.research.get('output').count", 2),
    ("l.count(3)", 1),
    ("t.count(2)", 2),
    ("l.index(2)", 2),
    ("d.get('a') + len(d.keys())", 3),
    # a multi-line expression (e.g. a YAML block scalar) needs no parentheses
    ("x > 1\n  and x < 10", True),
    ("  x  ", 7),
    ("x  # a comment", 7),
]


@pytest.mark.parametrize(("source", "expected"), ALLOWED)
def test_allowed_expressions(source: str, expected: Any) -> None:
    result = evaluate(source, make_names())
    assert result == expected
    assert type(result) is type(expected)


def test_lazy_mapping_loads_only_what_is_used() -> None:
    names = make_names()
    assert evaluate("steps.review.output.score > 0.5", names) is True
    assert names["steps"].loaded == ["review"]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("no and steps.never.output", False),
        ("yes or steps.never.output", True),
        ("n and steps.missing.output", None),
        ("x or 1 / 0", 7),
        ("no and l[99]", False),
        ("yes or unknown_name", True),
        ("1 > 2 > steps.never", False),
        ("1 if yes else 1 / 0", 1),
        ("1 / 0 if no else 2", 2),
    ],
)
def test_short_circuit_never_evaluates_the_other_side(source: str, expected: Any) -> None:
    assert evaluate(source, make_names()) == expected


def test_attribute_means_key_lookup_not_getattr() -> None:
    class Obj:
        secret = "s3cret"

    with pytest.raises(ExpressionError, match="cannot look up 'secret' on a Obj value"):
        evaluate("o.secret", {"o": Obj()})
    # a mapping's own attributes are not reachable either: 'keys' is a key lookup here
    with pytest.raises(ExpressionError, match="unknown key 'keys'"):
        evaluate("d.keys", {"d": {"a": 1}})
    assert evaluate("d.keys", {"d": {"keys": 5}}) == 5


def test_names_are_the_free_top_level_names() -> None:
    expr = compile_expression("len(steps.a.output) > input.n and lower(x.y) == s.lower()")
    assert expr.names == frozenset({"steps", "input", "x", "s"})
    assert compile_expression("1 + 2").names == frozenset()


def test_compiled_expressions_are_cached_and_immutable() -> None:
    expr = compile_expression("x + 1")
    assert compile_expression("x + 1") is expr
    assert expr.evaluate({"x": 1}) == 2
    assert expr.source == "x + 1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        expr.source = "x + 2"  # type: ignore[misc]
    assert isinstance(expr, Expression)


def test_non_string_source_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="must be a string"):
        compile_expression(True)  # type: ignore[arg-type]
    with pytest.raises(ExpressionError, match="must be a string"):
        compile_template(["x"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- refused

REFUSED: list[tuple[str, str, int]] = [
    ("[x for x in l]", "list comprehension", 1),
    ("1 + [x for x in l]", "list comprehension", 5),
    ("{x for x in l}", "set comprehension", 1),
    ("{x: 1 for x in l}", "dict comprehension", 1),
    ("len(x for x in l)", "generator expression", 4),
    ("lambda: 1", "lambda", 1),
    ("x or (lambda: 1)", "lambda", 7),
    ("f'{x}'", "f-string", 1),
    ("(y := 1)", "walrus operator", 4),
    ("[*l]", "starred expression", 2),
    ("len(*l)", "argument unpacking (*)", 5),
    ("len(**d)", "keyword argument unpacking (**)", 5),
    ("round(x, ndigits=2)", "keyword argument 'ndigits'", 10),
    ("{**d}", "dict unpacking (**)", 2),
    ("{'a': 1,  **d}", "dict unpacking (**)", 11),
    ("x.__class__", "attribute '__class__' starting with '_'", 3),
    ("d._private", "attribute '_private' starting with '_'", 3),
    ("s.__class__.__bases__", "attribute '__bases__' starting with '_'", 13),
    ("__builtins__", "name '__builtins__' starting with '_'", 1),
    ("1 + _x", "name '_x' starting with '_'", 5),
    ("__import__('os')", "name '__import__' starting with '_'", 1),
    ("open('/etc/passwd')", "call to unknown function 'open'", 1),
    ("x + eval('1')", "call to unknown function 'eval'", 5),
    ("  getattr(x, 'y')", "call to unknown function 'getattr'", 3),
    ("s.format(x)", "call to unknown method 'format'", 3),
    ("s.strip().__len__()", "attribute '__len__' starting with '_'", 11),
    ("l[0]()", "calling a computed value", 1),
    ("x & 1", "bitwise and (&)", 3),
    ("x | 1", "bitwise or (|)", 3),
    ("x ^ 1", "bitwise xor (^)", 3),
    ("x << 1", "left shift (<<)", 3),
    ("(x) >> (1)", "right shift (>>)", 5),
    ("x @ x", "matrix multiplication (@)", 3),
    ("~x", "bitwise not (~)", 1),
    ("1j", "imaginary number literal", 1),
    ("x + b'x'", "bytes literal", 5),
    ("...", "ellipsis", 1),
    ("await x", "await", 1),
    ("(yield)", "yield", 2),
    ("l[1:2, 3]", "slice outside a subscript", 3),
    ("é + [x for x in l]", "list comprehension", 5),
]


@pytest.mark.parametrize(("source", "construct", "column"), REFUSED)
def test_refused_constructs_name_the_construct_and_position(
    source: str, construct: str, column: int
) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source)
    message = str(info.value)
    assert message.startswith("unsafe expression: ")
    assert construct in message
    assert f"(line 1, column {column})" in message


def test_refused_construct_on_a_later_line() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("x +\n  [y for y in l]")
    assert "list comprehension is not allowed (line 2, column 3)" in str(info.value)
    with pytest.raises(ExpressionError, match=r"bitwise and \(&\).*\(line 2, column 2\)"):
        compile_expression("(x\n & 1)")


def test_refusal_message_matches_documented_format() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("1 + [x for x in l]")
    assert str(info.value) == (
        "unsafe expression: list comprehension is not allowed (line 1, column 5)"
    )


def test_refusal_happens_at_compile_time_even_in_dead_branches() -> None:
    with pytest.raises(ExpressionError, match="call to unknown function 'open'"):
        compile_expression("no and open('x')")


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("a +", "(line 1, column 4)"),
        ("a)", "unmatched ')' (line 1, column 2)"),
        ("(1, 2", "'(' was never closed (line 1, column 1)"),
        ("x y", "(line 1, column 3)"),
        ("x = 1", "(line 1, column"),
        ("a\n)b(", "(line 2, column 1)"),
        ("a\x00", "null character (line 1, column 2)"),
    ],
)
def test_syntax_errors_carry_a_position(source: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source)
    assert str(info.value).startswith("syntax error in expression")
    assert fragment in str(info.value)


@pytest.mark.parametrize("source", ["", "   ", "\n"])
def test_empty_expression(source: str) -> None:
    with pytest.raises(ExpressionError, match="expression is empty"):
        compile_expression(source)


def test_wrong_argument_count_is_found_at_compile_time() -> None:
    with pytest.raises(ExpressionError, match=r"len\(\) takes 1 argument \(2 given\)"):
        compile_expression("len(l, l)")
    with pytest.raises(ExpressionError, match=r"min\(\) takes at least 1 argument \(0 given\)"):
        compile_expression("min()")


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("steps.x.output", "in 'steps.x.output': unknown key 'x'"),
        ("missing + 1", "in 'missing + 1': unknown name 'missing'"),
        ("d['zz']", "unknown key 'zz'"),
        ("l[10]", "index 10 out of range (length 3)"),
        ("l['a']", "list index must be an integer, not str"),
        ("n.x", "cannot look up 'x' on None"),
        ("x.y", "cannot look up 'y' on a int value"),
        ("x[0]", "cannot look up 0 in a int value"),
        ("d[1:2]", "cannot slice a dict value"),
        ("1 / 0", "division by zero"),
        ("x % 0", "modulo by zero"),
        ("'a' + 1", "can only concatenate str"),
        ("int('abc')", "invalid literal for int()"),
        ("lower(1)", "lower() expects a string, not int"),
        ("keys(l)", "keys() expects a mapping, not list"),
        ("x.lower()", "lower() cannot be called on a int value"),
        ("l.get(0)", "get() cannot be called on a list value"),
        ("d.get()", "get() takes 1 to 2 arguments (0 given)"),
        ("'%s' % x", "string formatting with '%' is not allowed"),
        ("min([])", "empty"),
        ("sorted([1, 'a'])", "not supported"),
        ("flatten('ab')", "flatten() expects a list, not str"),
        ("l.index(99)", "99 is not in list"),
        ("float('1e308') * 10 ** 10 > int(float('inf'))", "number is too large"),
    ],
)
def test_runtime_failures_become_expression_errors(source: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate(source, make_names())
    assert fragment in str(info.value)
    assert str(info.value).startswith("in ")


# --------------------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("2 ** 101", "exponent 101 is too large"),
        ("2.0 ** -1000", "exponent -1000 is too large"),
        ("(10 ** 30) ** 100", "result of ** is too large"),
        ("'a' * 100001", "too large"),
        ("100001 * 'a'", "too large"),
        ("[0, 1] * 50001", "too large"),
        ("('ab' * 50000) * 2", "too large"),
        # nested sharing cannot multiply past the limit ([[0] * 1000] * 1000 is 10**6 items)
        ("str([[0] * 1000] * 1000)", "too large"),
        ("int('9' * 1300)", "integer result is too large (more than 4096 bits)"),
        ("(2 ** 100) ** 1 * (2 ** 100) ** 1" + " * 2 ** 100" * 40, "integer result is too large"),
        ("round(1, -1000000)", "round() digits must be between"),
        ("('a' * 100000).replace('a', 'b' * 20)", "replace() result would be too large"),
        ("join('a' * 100000, 'b' * 100)", "join() result would be too large"),
        ("[] * 10 ** 30", "too large"),
    ],
)
def test_resource_limits_at_runtime(source: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate(source, make_names())
    assert fragment in str(info.value)


def test_limits_allow_values_just_inside() -> None:
    names = make_names()
    assert evaluate("len('a' * 100000)", names) == 100_000
    assert evaluate("len([0] * 100000)", names) == 100_000
    assert evaluate("2 ** 100", names) == 2**100
    assert evaluate("(2 ** 40) ** 99 > 0", names) is True  # 3961 bits


def test_source_too_long() -> None:
    with pytest.raises(ExpressionError, match="expression is too long: 2001 characters"):
        compile_expression("1" + " " * 2000)


def test_too_many_nodes() -> None:
    with pytest.raises(ExpressionError, match="too complex"):
        compile_expression("[" + "1," * 300 + "]")
    compile_expression("[" + "1," * 299 + "]")  # 300 nodes is fine


@pytest.mark.parametrize(
    "source",
    [
        "[" * 51 + "]" * 51,
        "-" * 60 + "1",
        "not " * 60 + "x",
        "x" + ".a" * 60,
        "-" * 1999 + "1",  # deep enough to exhaust the parser's own recursion
        "(" * 201 + ")" * 201,  # the tokenizer's limit: "too many nested parentheses"
    ],
)
def test_deep_nesting(source: str) -> None:
    with pytest.raises(ExpressionError, match="nested"):
        compile_expression(source)


def test_nesting_inside_the_limit_is_fine() -> None:
    assert evaluate("[" * 49 + "]" * 49, {}) is not None
    assert evaluate("(" * 150 + "1" + ")" * 150, {}) == 1  # parentheses add no nodes


def test_huge_integer_literal() -> None:
    with pytest.raises(
        ExpressionError, match=r"integer literal is too large .*\(line 1, column 5\)"
    ):
        compile_expression("1 + 1" + "0" * 1300)


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    _expression.compile_cached.cache_clear()
    yield
    _expression.compile_cached.cache_clear()


@pytest.mark.usefixtures("fresh_cache")
def test_long_string_literal(monkeypatch: pytest.MonkeyPatch) -> None:
    # The 2000-character source limit normally makes this unreachable; lift it to check.
    monkeypatch.setattr(_limits, "MAX_SOURCE_LENGTH", 20_000)
    with pytest.raises(ExpressionError, match="string literal is too long: 10001 characters"):
        compile_expression("x + '" + "a" * 10_001 + "'")
    assert evaluate("len('" + "a" * 10_000 + "')", {}) == 10_000


# --------------------------------------------------------------------------- templates

TEMPLATES: list[tuple[str, Any]] = [
    ("Summarise {{ input.topic }} please", "Summarise otters please"),
    ("{{input.topic}}", "otters"),
    ("n={{ input.n }}", "n=3"),
    ("tags: {{ input.tags }}", 'tags: ["x", "y"]'),
    ("data: {{ d }}", 'data: {"a": 1, "b": null}'),
    ("unicode: {{ ['é'] }}", 'unicode: ["é"]'),
    ("none:[{{ n }}]", "none:[]"),
    ("flag: {{ yes }}", "flag: True"),
    ("{{ x }}{{ x }}", "77"),
    ("{{ x }} and {{ s.strip() }}", "7 and Hello World"),
    ("facts: {{ steps.research.output }}", 'facts: {"facts": ["a", "b"], "count": 2}'),
    # native values when the template is exactly one expression
    ("{{ input.tags }}", ["x", "y"]),
    ("  {{ input.n }}\n", 3),
    ("{{ d }}", {"a": 1, "b": None}),
    ("{{ n }}", None),
    ("{{ steps.research.output.facts }}", ["a", "b"]),
    # closing braces inside the expression do not end it
    ("{{ {'a': {'b': 1}} }}", {"a": {"b": 1}}),
    ("{{ '}}' }}!", "}}!"),
    ('{{ "{{" }}', "{{"),
    ("a }} b", "a }} b"),
    ("", ""),
    ("{{ x\n  + 1 }}", 8),
]


@pytest.mark.parametrize(("text", "expected"), TEMPLATES)
def test_templates(text: str, expected: Any) -> None:
    result = render(text, make_names())
    assert result == expected
    assert type(result) is type(expected)


def test_template_with_lazy_mapping_renders_json() -> None:
    names = {"steps": LazyMapping({"a": lambda: {"v": 1}})}
    assert render("all: {{ steps }}", names) == 'all: {"a": {"v": 1}}'


def test_compiled_template_parts() -> None:
    template = compile_template("Hi {{ input.topic }} and {{ len(l) }}")
    assert isinstance(template, Template)
    assert [e.source for e in template.expressions] == ["input.topic", "len(l)"]
    assert template.names == frozenset({"input", "l"})
    assert template.render(make_names()) == "Hi otters and 3"
    assert compile_template("plain").expressions == ()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Hello {{ name", "unclosed '{{' in template (line 1, column 7)"),
        ("ok {{ x }} then {{ y", "unclosed '{{' in template (line 1, column 17)"),
        ("line one\n  {{ lambda: 1 }}", "lambda is not allowed (line 2, column 6)"),
        ("a {{ x + [y for y in l] }}", "list comprehension is not allowed (line 1, column 10)"),
        ("{{ }}", "expression is empty (line 1, column 1)"),
        ("{{ it's }}", "syntax error"),
        ("{{ open('x') }}", "call to unknown function 'open'"),
    ],
)
def test_template_errors(text: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_template(text)
    assert fragment in str(info.value)


def test_template_runtime_error_names_the_expression() -> None:
    with pytest.raises(ExpressionError, match=re.escape("in 'steps.x.output': unknown key 'x'")):
        render("Use {{ steps.x.output }}", make_names())


# --------------------------------------------------------------------------- properties

NAMES_FOR_FUZZING: dict[str, Any] = {
    "x": 3,
    "y": -2,
    "s": "Hi there",
    "d": {"a": 1, "b": [1, 2]},
    "l": [1, 2, 3],
    "n": None,
}

TOKENS = [
    "x", "y", "s", "d", "l", "n", "q", "0", "1", "2.5", "100", "'a'", '"b"', "(", ")", "[",
    "]", "{", "}", ",", ":", ".", "+", "-", "*", "**", "/", "//", "%", "<", "==", ">=", "!=",
    "in", "not", "and", "or", "is", "if", "else", "lambda", "len", "lower", "get", "keys",
    "join", "split", "sorted", "round", "int", "str", "default", "upper", "items", "count",
    "replace", "__class__", "_x", "for", ":=", "*", "&", "~", "\n", "#", "\\", "{{", "}}",
]  # fmt: skip


def _only_expression_errors(source: str) -> None:
    with contextlib.suppress(ExpressionError):
        evaluate(source, NAMES_FOR_FUZZING)
    with contextlib.suppress(ExpressionError):
        render(source, NAMES_FOR_FUZZING)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_arbitrary_text_only_raises_expression_error(source: str) -> None:
    _only_expression_errors(source)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join))
def test_token_soup_only_raises_expression_error(source: str) -> None:
    _only_expression_errors(source)


_BINARY = ["+", "-", "*", "//", "%", "<", "<=", ">", ">=", "==", "!=", "and", "or"]


def _arithmetic() -> st.SearchStrategy[str]:
    leaves = st.integers(min_value=-12, max_value=12).map(str) | st.sampled_from(["True", "False"])

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from(_BINARY), inner).map(
                lambda t: f"({t[0]}) {t[1]} ({t[2]})"
            ),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]}) < ({t[1]}) <= ({t[2]})"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]}) if ({t[1]}) else ({t[2]})"),
            inner.map(lambda c: f"not ({c})"),
            inner.map(lambda c: f"-({c})"),
        )

    return st.recursive(leaves, extend, max_leaves=16)


def _depth(node: ast.AST) -> int:
    return 1 + max((_depth(child) for child in ast.iter_child_nodes(node)), default=0)


@settings(max_examples=200, deadline=None)
@given(_arithmetic())
def test_arithmetic_matches_python(source: str) -> None:
    assume(_depth(ast.parse(source, mode="eval").body) <= 40)  # operators count as nodes here
    try:
        expected = eval(source, {"__builtins__": {}}, {})  # the oracle; fine in tests only
    except ZeroDivisionError:
        with pytest.raises(ExpressionError, match="by zero"):
            evaluate(source, {})
        return
    result = evaluate(source, {})
    assert result == expected
    assert type(result) is type(expected)


@settings(max_examples=200, deadline=None)
@given(st.text().filter(lambda text: "{{" not in text))
def test_text_without_braces_renders_to_itself(text: str) -> None:
    assert render(text, {}) == text
    assert compile_template(text).expressions == ()
