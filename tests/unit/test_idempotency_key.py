"""Tools get an idempotency key: the same on every repeat of one call, unique per call.

Tool side effects are at least once (a worker that dies after the tool acted repeats it);
the key lets a tool make the repeat harmless.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentfn import RunStatus, UserError, idempotency_key
from agentfn.testing import run_workflow

TOOLS = '''
from pathlib import Path

from agentfn import idempotency_key, tool

LEDGER = Path(__file__).with_name("keys.txt")


@tool
def keyed(label: str) -> str:
    """Note the call's key; fail the first time for label 'flaky' (a worker lost mid-call)."""
    seen = LEDGER.read_text().splitlines() if LEDGER.exists() else []
    LEDGER.open("a").write(f"{label} {idempotency_key()}\\n")
    if label == "flaky" and not any(line.startswith("flaky ") for line in seen):
        raise RuntimeError("lost after the side effect")
    return label
'''
WORKFLOW = """\
name: keys
tools: [tools.py]
nodes:
  - {id: a, type: tool, tool: keyed, args: {label: one}}
  - {id: b, type: tool, tool: keyed, args: {label: flaky}}
  - {id: c, type: parallel, for_each: "['p', 'q']", tool: keyed, args: {label: "{{ item }}"}}
edges:
  - {from: a, to: b}
  - {from: b, to: c}
"""


def test_each_call_has_its_own_key_and_a_repeat_has_the_same(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text(TOOLS)
    (tmp_path / "workflow.yaml").write_text(WORKFLOW)
    run = run_workflow(tmp_path / "workflow.yaml")
    assert run.status == RunStatus.completed, run.error
    calls = [line.split(" ", 1) for line in (tmp_path / "keys.txt").read_text().splitlines()]
    keys = {label: [k for lbl, k in calls if lbl == label] for label, _ in calls}
    assert len(keys["flaky"]) == 2 and keys["flaky"][0] == keys["flaky"][1]
    distinct = {keys[label][0] for label in ("one", "flaky", "p", "q")}
    assert len(distinct) == 4
    assert all(k.startswith(run.id + "/") for k in distinct)


def test_outside_a_tool_call_there_is_no_key() -> None:
    with pytest.raises(UserError, match="only available while the engine runs a tool"):
        idempotency_key()
