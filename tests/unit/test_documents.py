"""Untrusted documents are parsed within bounds: each hostile shape is a UserError, and
ordinary documents — brackets inside strings, sixty levels deep — still parse."""

from __future__ import annotations

import json

import pytest

from agentfn.documents import LIMITS, Limits, check_tree, loads_json
from agentfn.errors import BlueprintError, UserError
from agentfn.yaml_source import parse_yaml


def test_ordinary_json_parses() -> None:
    text = json.dumps({"a": "[[[[{{{{" * 100, "n": [1.5, -2, 10**20], "deep": [[[[[]]]]]})
    assert loads_json(text)["n"] == [1.5, -2, 10**20]
    nested = "[" * (LIMITS.max_depth - 1) + "]" * (LIMITS.max_depth - 1)
    assert loads_json(nested) is not None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested deeper"),
        ('{"a": ' * 65 + "1" + "}" * 65, "nested deeper"),
        ("9" * 4300, "digits"),
        ("1." + "5" * 100, "digits"),
        ("NaN", "not a JSON number"),
        ('"\\udc00"', "surrogate"),
        ('{"\\ud800": 1}', "surrogate"),
        ("{", "not valid JSON"),
    ],
)
def test_hostile_json_is_a_user_error(text: str, problem: str) -> None:
    with pytest.raises(UserError, match=problem) as info:
        loads_json(text, field="body")
    assert info.value.field == "body" and info.value.status == 400


def test_non_utf8_bytes_are_refused() -> None:
    with pytest.raises(UserError, match="not UTF-8"):
        loads_json(b"\xff\xfe")


def test_limits_are_parameters() -> None:
    with pytest.raises(UserError, match="nested deeper than 2"):
        check_tree([[["x"]]], field="x", limits=Limits(max_depth=2))
    with pytest.raises(UserError, match="longer than 3"):
        check_tree({"k": "abcd"}, field="x", limits=Limits(max_string_chars=3))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: &x [1, 2]\nb: *x\n", "aliases"),
        ("a: &x [*x]\n", "aliases"),
        ("n: " + "9" * 4300 + "\n", "digits"),
        ("n: " + "[" * 70 + "]" * 70 + "\n", "nested deeper"),
        ('s: "\\ud800"\n', "invalid Unicode"),  # the YAML reader refuses it itself
    ],
)
def test_hostile_yaml_is_a_blueprint_error(text: str, problem: str) -> None:
    with pytest.raises(BlueprintError, match=problem) as info:
        parse_yaml(text, "workflow.yaml")
    assert info.value.message.startswith("workflow.yaml")


def test_ordinary_yaml_keeps_its_lines() -> None:
    source = parse_yaml("name: x\nnodes:\n  - id: a\n    when: 'a[0] > 1'\n", "w.yaml")
    assert source.data["nodes"][0]["when"] == "a[0] > 1"
    assert source.line_of(("nodes", 0, "when")) == 4
