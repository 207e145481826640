"""Typed tools: schemas from type hints, validated invocation, registries from modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from agentfn.errors import ToolError, UserError
from agentfn.tools import Tool, ToolRegistry, load_registry, load_tool_module, tool


class Point(BaseModel):
    x: int
    y: int


@tool
def search(
    query: Annotated[str, Field(description="What to look for")],
    limit: int = 5,
    mode: Literal["fast", "deep"] = "fast",
) -> list[str]:
    """Search the index.

    Longer explanation that the model does not need.
    """
    return [f"{mode}:{query}"] * limit


@tool(name="move-point", description="Move a point.")
def move(p: Point, dx: int) -> Point:
    return Point(x=p.x + dx, y=p.y)


def test_schema_comes_from_type_hints() -> None:
    spec = search.spec()
    assert spec.name == "search"
    assert spec.description == "Search the index."
    params = spec.parameters
    assert params["type"] == "object"
    assert params["required"] == ["query"]
    assert params["properties"]["query"] == {
        "description": "What to look for",
        "title": "Query",
        "type": "string",
    }
    assert params["properties"]["limit"]["default"] == 5
    assert params["properties"]["mode"]["enum"] == ["fast", "deep"]
    assert params["additionalProperties"] is False


def test_invoke_validates_and_returns_json() -> None:
    assert search.invoke({"query": "q", "limit": 2}) == ["fast:q", "fast:q"]
    assert move.invoke({"p": {"x": 1, "y": 2}, "dx": 3}) == {"x": 4, "y": 2}
    assert move.name == "move-point" and move.description == "Move a point."
    with pytest.raises(
        ToolError,
        match=r"tool 'search' rejected its arguments: limit: Input should be a valid integer",
    ):
        search.invoke({"query": "q", "limit": "many"})
    with pytest.raises(ToolError, match="mode"):
        search.invoke({"query": "q", "mode": "slow"})
    with pytest.raises(ToolError, match="query: Field required"):
        search.invoke({})
    with pytest.raises(ToolError, match="extra: Extra inputs are not permitted"):
        search.invoke({"query": "q", "extra": 1})


def test_tools_remain_plain_callables() -> None:
    assert search("x", 1) == ["fast:x"]


def test_bad_tool_definitions() -> None:
    with pytest.raises(UserError, match="must be 1-64"):
        Tool(lambda: 1, name="has space")

    def star(*args: int) -> int:
        return 0

    with pytest.raises(UserError, match=r"\*args"):
        Tool(star)


def test_registry_and_module_loading(tmp_path: Path) -> None:
    module = tmp_path / "mytools.py"
    module.write_text("from agentfn import tool\n\n@tool\ndef ping(x: int) -> int:\n    return x\n")
    registry = load_registry([module])
    assert registry.names() == ["ping"]
    assert registry.get("ping").invoke({"x": 3}) == 3
    assert load_tool_module(module)[0] is registry.get("ping")  # imported once per process
    with pytest.raises(UserError, match=r"unknown tool 'pong' \(known: ping\)"):
        registry.get("pong")
    clash = ToolRegistry([search])
    with pytest.raises(UserError, match="two tools are named 'search'"):
        clash.register(Tool(lambda query: query, name="search"))


def test_broken_modules_are_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise ValueError('nope')\n")
    with pytest.raises(UserError, match=r"broken\.py failed to import: ValueError: nope"):
        load_tool_module(broken)
    with pytest.raises(UserError, match="does not exist"):
        load_tool_module(tmp_path / "absent.py")
