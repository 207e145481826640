"""Blueprint validation: every error names the file, the line and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentfn.errors import BlueprintError
from agentfn.functions.local.cli import EXAMPLE
from agentfn.workflows import MAX_NODES, load_blueprint
from tests.support.engine_harness import project


def test_the_bundled_example_is_valid() -> None:
    loaded = load_blueprint(EXAMPLE / "workflow.yaml")
    bp = loaded.blueprint
    assert bp.name == "research-brief"
    assert {n.type for n in bp.nodes} == {"agent", "parallel", "tool", "join", "condition"}
    assert bp.roots == ["plan"]


CASES = [
    (
        "nodes:\n  - {id: a, type: agent, agent: nobody}\n",
        "nodes[0].agent: unknown agent 'nobody' (declared: echo, helper, looper)",
    ),
    (
        "nodes:\n  - {id: a, type: tool, tool: missing_tool}\n",
        "nodes[0].tool: unknown tool 'missing_tool' (known: add, count, explode, flaky, length, record, slow, verdict)",
    ),
    (
        "nodes:\n  - {id: a, type: teleport}\n",
        "nodes[0]: unknown node type; use one of agent, tool, condition, parallel, join, aggregate, wait, loop",
    ),
    (
        'nodes:\n  - {id: a, type: condition, expression: "().__class__"}\n',
        "nodes[0].expression: unsafe expression",
    ),
    (
        "nodes:\n  - {id: a, type: condition, expression: 'true'}\nedges:\n  - {from: a, to: b}\n",
        "edges[0].to: unknown node 'b'",
    ),
    (
        "nodes:\n  - {id: a, type: condition, expression: '1'}\n"
        "  - {id: b, type: condition, expression: '1'}\n"
        "edges:\n  - {from: a, to: b}\n  - {from: b, to: a}\n",
        "cycle",
    ),
    (
        "nodes:\n  - {id: a, type: condition, expression: '1'}\n"
        "  - {id: a, type: condition, expression: '2'}\n",
        "nodes[1].id: duplicate node id 'a'",
    ),
    (
        "nodes:\n  - {id: a, type: condition, expression: '1'}\n  - {id: j, type: join}\n"
        "edges:\n  - {from: a, to: j}\n",
        "nodes[1]: a join node needs at least two incoming edges",
    ),
    (
        "nodes:\n  - {id: a, type: condition, expression: '1', colour: red}\n",
        "nodes[0].colour: unknown field",
    ),
    (
        "nodes:\n  - {id: a, type: agent, agent: echo, prompt: 'hi {{ [x for x in y] }}'}\n",
        "nodes[0].prompt: in template: unsafe expression: list comprehension is not allowed",
    ),
    (
        "nodes:\n  - {id: 'bad id', type: condition, expression: '1'}\n",
        "nodes[0].id: Value error, must start with a letter",
    ),
    ("nodes: [\n", "invalid YAML"),
    # every static read of an expression or template is checked against what exists there
    (
        "inputs:\n  ticket: {type: string}\n"
        "nodes:\n  - {id: a, type: agent, agent: echo, prompt: 'about {{ input.tiket }}'}\n",
        "nodes[0].prompt: input.tiket: no input 'tiket' (declared: ticket)",
    ),
    (
        "nodes:\n  - {id: a, type: condition, expression: '1'}\n"
        "  - {id: b, type: condition, expression: '1'}\n"
        "edges:\n  - {from: a, to: b, when: 'steps.lokup.output'}\n",
        "edges[0].when: steps.lokup: no node 'lokup' upstream of 'a'",
    ),
    (
        "nodes:\n  - {id: a, type: condition, expression: '1'}\n"
        "  - {id: b, type: condition, expression: \"'lokup' in steps and steps.lokup.output\"}\n"
        "edges:\n  - {from: a, to: b}\n",
        "nodes[1].expression: steps.lokup: no node 'lokup' upstream of 'b'",
    ),
    (
        "nodes:\n  - {id: a, type: condition, expression: '1'}\n"
        "  - {id: b, type: condition, expression: '1'}\n"
        "  - {id: c, type: condition, expression: 'steps.b.output'}\n"
        "edges:\n  - {from: a, to: b}\n  - {from: a, to: c}\n",
        "nodes[2].expression: steps.b: no node 'b' upstream of 'c', so it has not run there "
        "(upstream: a)",
    ),
    (
        "nodes:\n  - {id: a, type: condition, expression: 'outptu'}\n",
        "nodes[0].expression: unknown name 'outptu' (in scope here: input, run, steps)",
    ),
    (
        "nodes:\n  - {id: a, type: condition, expression: 'item > 1'}\n",
        "nodes[0].expression: unknown name 'item'",
    ),
    (
        "nodes:\n  - {id: a, type: condition, expression: 'run.idd'}\n",
        "nodes[0].expression: run.idd: unknown (run has id, workflow)",
    ),
    (
        "nodes:\n  - {id: a, type: condition, expression: '1'}\n"
        "  - {id: b, type: condition, expression: '1'}\n"
        "edges:\n  - {from: a, to: b, when: 'steps.a.output'}\n",
        "edges[0].when: steps.a: no node 'a' upstream of 'a'",
    ),
]


@pytest.mark.parametrize(("body", "message"), CASES)
def test_blueprint_errors_name_file_line_and_problem(
    tmp_path: Path, body: str, message: str
) -> None:
    wf = project(tmp_path, body)
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(wf)
    text = str(caught.value)
    assert text.startswith(f"{wf}:"), text
    assert message in text, text
    assert "\n" not in text


def test_error_line_points_at_the_offending_value(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        "nodes:\n  - id: a\n    type: agent\n    agent: nobody\n",
    )
    lines = wf.read_text().splitlines()
    expected = next(i for i, line in enumerate(lines, 1) if "agent: nobody" in line)
    with pytest.raises(BlueprintError, match=rf"^{wf}:{expected}: nodes\[0\]\.agent"):
        load_blueprint(wf)


def test_unknown_model_and_missing_rule_file(tmp_path: Path) -> None:
    wf = project(tmp_path, "nodes:\n  - {id: a, type: agent, agent: echo}\n")
    (wf.parent / "rules.yaml").unlink()
    with pytest.raises(
        BlueprintError, match=r"models\.default\.rules: rule file 'rules.yaml' not found"
    ):
        load_blueprint(wf)


def test_missing_file() -> None:
    with pytest.raises(BlueprintError, match="file not found"):
        load_blueprint(Path("/nonexistent/wf.yaml"))


def _chain(length: int) -> str:
    nodes = "".join(f"  - {{id: n{i}, type: condition, expression: '1'}}\n" for i in range(length))
    edges = "".join(f"  - {{from: n{i}, to: n{i + 1}}}\n" for i in range(length - 1))
    return f"nodes:\n{nodes}edges:\n{edges}"


def test_a_long_chain_validates_without_recursion(tmp_path: Path) -> None:
    """Graph checks are iterative: a chain at the node limit is fine (was RecursionError)."""
    loaded = load_blueprint(project(tmp_path, _chain(MAX_NODES)))
    assert len(loaded.blueprint.nodes) == MAX_NODES


def test_more_nodes_than_the_limit_is_a_blueprint_error(tmp_path: Path) -> None:
    with pytest.raises(BlueprintError, match=f"at most {MAX_NODES} items"):
        load_blueprint(project(tmp_path, _chain(MAX_NODES + 200)))


def test_a_long_cycle_names_its_path_and_closing_edge(tmp_path: Path) -> None:
    body = _chain(900) + "  - {from: n899, to: n0}\n"
    wf = project(tmp_path, body)
    lines = wf.read_text().splitlines()
    closing = next(i for i, line in enumerate(lines, 1) if "from: n899, to: n0" in line)
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(wf)
    text = str(caught.value)
    assert text.startswith(f"{wf}:{closing}: edges[899]: cycle n0 -> n1 -> "), text[:200]
    assert text.endswith("n899 -> n0: workflows are acyclic (repeat with a loop node)")


def test_reads_that_exist_where_they_are_made_validate(tmp_path: Path) -> None:
    body = """\
inputs:
  topic: {type: string}
nodes:
  - {id: a, type: condition, expression: "input.topic != '' and run.id != ''"}
  - {id: b, type: parallel, for_each: "[1, 2]", agent: echo, prompt: "{{ item }} {{ index }}"}
  - {id: c, type: condition, expression: "steps.a.output and steps['b'].output"}
edges:
  - {from: a, to: b, when: "output"}
  - {from: b, to: c}
output: "{{ steps.c.output }} {{ steps.a.output }}"
"""
    loaded = load_blueprint(project(tmp_path, body))
    assert [n.id for n in loaded.blueprint.nodes] == ["a", "b", "c"]
