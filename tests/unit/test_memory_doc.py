"""docs/memory.md shows a blueprint and the memory tools: the blueprint must load as written,
and the tools table must list exactly the built-in tools with the arguments they accept."""

from __future__ import annotations

import re
from pathlib import Path

from agentfn.agents import MEMORY_TOOLS
from agentfn.memory_tools import memory_tool_spec
from agentfn.workflows import load_blueprint

DOC = Path(__file__).resolve().parents[2] / "docs" / "memory.md"


def test_the_documented_blueprint_loads(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    blueprint = re.search(r"```yaml\n(name: support\n.*?)```", text, re.DOTALL)
    assert blueprint is not None
    path = tmp_path / "support.yaml"
    path.write_text(blueprint[1])
    bp = load_blueprint(path).blueprint
    support = bp.agents["support"]
    assert set(support.tools) == MEMORY_TOOLS
    assert support.history_summariser == "condenser" and support.memory.ttl_s == 2592000
    assert bp.agents["classifier"].cache_ttl_s == 86400


def test_the_tools_table_lists_each_tool_and_its_arguments() -> None:
    rows = re.findall(r"^\| `(\w+)` \| (.*?) \|", DOC.read_text(encoding="utf-8"), re.MULTILINE)
    documented = {name: args for name, args in rows if name in MEMORY_TOOLS}
    assert set(documented) == MEMORY_TOOLS
    for name, args in documented.items():
        for argument in memory_tool_spec(name).parameters["properties"]:
            assert f"`{argument}`" in args, (name, argument)
