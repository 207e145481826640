"""docs/expressions.md lists the callable functions, methods and limits; they must match the code.

The tables are read from the Markdown (first column the name in backticks, second column the
argument count or the value), so adding a function or changing a limit without updating the
doc fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentfn.expressions import _functions, _limits

DOC = Path(__file__).resolve().parents[2] / "docs" / "expressions.md"

_ROW = re.compile(r"^\|\s*`(?P<name>[A-Za-z_]+)`\s*\|\s*(?P<second>[^|]*?)\s*\|")
_ARITY = re.compile(r"^(?P<low>\d+)(?:(?P<or_more> or more)|\u2013(?P<high>\d+))?$")


def _section(heading: str) -> list[tuple[str, str]]:
    """The (name, second column) rows of the first table under ``heading``."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading) + 1
    level = len(heading) - len(heading.lstrip("#"))
    rows: list[tuple[str, str]] = []
    for line in lines[start:]:
        if line.startswith("#") and len(line) - len(line.lstrip("#")) <= level:
            break  # the next heading of the same or a higher level
        if rows and not line.startswith("|"):
            break
        match = _ROW.match(line)
        if match:
            rows.append((match["name"], match["second"]))
    assert rows, f"no table under {heading!r} in {DOC.name}"
    return rows


def _arity(text: str) -> tuple[int, int | None]:
    match = _ARITY.match(text)
    assert match, f"cannot read the argument count {text!r}"
    low = int(match["low"])
    if match["or_more"]:
        return low, None
    return low, int(match["high"]) if match["high"] else low


def _documented(heading: str) -> dict[str, tuple[int, int | None]]:
    rows = _section(heading)
    names = [name for name, _ in rows]
    assert len(names) == len(set(names)), f"a name is listed twice under {heading!r}"
    return {name: _arity(second) for name, second in rows}


def _table(specs: dict[str, _functions.Spec]) -> dict[str, tuple[int, int | None]]:
    return {name: (low, high) for name, (_, low, high) in specs.items()}


@pytest.mark.parametrize(
    ("heading", "specs"),
    [
        ("## Functions", _functions.FUNCTIONS),
        ("### Methods on strings", _functions.STR_METHODS),
        ("### Methods on mappings", _functions.MAPPING_METHODS),
        ("### Methods on lists and tuples", _functions.SEQUENCE_METHODS),
    ],
)
def test_documented_calls_match_the_code(heading: str, specs: dict[str, _functions.Spec]) -> None:
    assert _documented(heading) == _table(specs)


def test_documented_limits_match_the_code() -> None:
    documented = {name: int(value.replace(",", "")) for name, value in _section("## Limits")}
    declared = {name: value for name, value in vars(_limits).items() if name.startswith("MAX_")}
    assert documented == declared
