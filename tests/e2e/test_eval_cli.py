"""`agentfn eval` and `agentfn tune` as a user runs them: a suite's checks (exact, contains,
regex, JSON schema, a judge agent) scored per case with cost and latency; a grid of three
instruction variants run and ranked by the suite's score; bad suites one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli import agentfn, one_error_line

RULES = """
model: scripted-test
rules:
  - agent: critic
    match: "Criteria: Is it polite"
    reply: {content: "PASS: it greets"}
  - agent: critic
    reply: {content: "FAIL: it does not"}
  - agent: greeter
    instructions: rude
    reply: {content: "What now, {last_user}?"}
  - agent: greeter
    instructions: warm
    reply: {content: "Hello dear {last_user}, how lovely to see you!"}
  - agent: greeter
    reply: {content: "Hello, {last_user}!"}
"""
FLOW = """
name: greet
models:
  default: {provider: scripted, rules: rules.yaml}
prices:
  scripted-test: {input_per_mtok: 1.0, output_per_mtok: 2.0}
agents:
  greeter: {instructions: Greet the person.}
  critic: {instructions: Judge.}
inputs:
  who: {type: string}
nodes:
  - {id: hello, type: agent, agent: greeter, prompt: "{{ input.who }}"}
output: "{{ steps.hello.output }}"
"""
SUITE = """
name: greetings
workflow: greet.yaml
judge: {agent: critic}
cases:
  - name: ada
    input: {who: Ada}
    checks:
      - {type: contains, value: hello}
      - {type: regex, pattern: "Ada"}
      - {type: judge, criteria: "Is it polite?"}
  - name: bob
    input: {who: Bob}
    checks:
      - {type: exact, value: "Hello, Bob!"}
      - {type: json_schema, schema: {type: object}}
      - {type: contains, value: hello, target: steps.hello}
"""


def folder(tmp_path: Path) -> Path:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "greet.yaml").write_text(FLOW)
    (tmp_path / "suite.yaml").write_text(SUITE)
    return tmp_path / "suite.yaml"


def test_eval_scores_every_check_with_cost_and_latency(tmp_path: Path) -> None:
    suite = folder(tmp_path)
    done = agentfn("eval", str(suite), "--json", home=tmp_path / "home")
    assert done.returncode == 1, done.stderr  # a check failed: not every case passed
    result = json.loads(done.stdout)
    cases = {c["case"]: c for c in result["cases"]}
    assert [r["passed"] for r in cases["ada"]["checks"]] == [True, True, True]
    assert [r["passed"] for r in cases["bob"]["checks"]] == [True, False, True]
    assert cases["bob"]["checks"][1]["detail"] == "the output is not JSON"
    assert result["score"] == (1 + 2 / 3) / 2
    assert result["cost_usd"] > 0 and result["mean_seconds"] is not None
    table = agentfn("eval", str(suite), "--workers", "1", home=tmp_path / "home")
    assert table.returncode == 1 and "score 0.833" in table.stdout and "json_schema" in table.stdout


def test_tune_runs_each_configuration_and_ranks_them_by_score(tmp_path: Path) -> None:
    suite = folder(tmp_path)
    grid = "instructions.greeter=Greet the person.,Greet warmly.,Be rude to them."
    done = agentfn("tune", str(suite), "--grid", grid, "--json", home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    ranked = json.loads(done.stdout)
    order = [r["config"]["instructions"]["greeter"] for r in ranked]
    scores = [r["score"] for r in ranked]
    assert order[-1] == "Be rude to them." and scores[-1] < scores[0]  # rude greets nobody
    assert scores == sorted(scores, reverse=True)
    assert set(order) == {"Greet the person.", "Greet warmly.", "Be rude to them."}
    # equal scores: the cheaper first (warm greetings are longer, so cost more)
    assert order[:2] == ["Greet the person.", "Greet warmly."]
    shown = agentfn("tune", str(suite), "--grid", grid, home=tmp_path / "home")
    assert shown.returncode == 0 and "rank" in shown.stdout


def test_bad_suites_and_grids_are_one_line(tmp_path: Path) -> None:
    suite = folder(tmp_path)
    home = tmp_path / "home"
    assert "suite file not found" in one_error_line(agentfn("eval", "nope.yaml", home=home))
    (tmp_path / "bad.yaml").write_text("name: x\nworkflow: greet.yaml\ncases: []\n")
    assert "cases" in one_error_line(agentfn("eval", str(tmp_path / "bad.yaml"), home=home))
    bad_grid = agentfn("tune", str(suite), "--grid", "colour=red", home=home)
    assert "a grid varies model, temperature or instructions" in one_error_line(bad_grid)
    bad_temp = agentfn("tune", str(suite), "--grid", "temperature=hot", home=home)
    assert "'hot' is not a number" in one_error_line(bad_temp)
    ghost = agentfn("tune", str(suite), "--grid", "instructions.ghost=Boo", home=home)
    assert "has no agent 'ghost'" in one_error_line(ghost)
