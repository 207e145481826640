"""A JSON agent whose answer does not parse is told so and asked again, as a new turn.

Before: the parse error failed the step, and the retry replayed the same saved reply, so the
agent could never recover.
"""

from __future__ import annotations

from pathlib import Path

from agentfn import RunStatus
from agentfn.agents import JSON_CORRECTION
from agentfn.testing import run_workflow

WORKFLOW = """\
name: json-agent
models:
  default: {provider: scripted, rules: rules.yaml}
agents:
  planner: {instructions: Plan. Answer in JSON., output: json, max_steps: MAX}
nodes:
  - {id: plan, type: agent, agent: planner, prompt: "plan it"}
output: "{{ steps.plan.output }}"
"""
RULES = f"""\
rules:
  - match: "{JSON_CORRECTION}"
    reply: {{content: '{{"topics": ["a", "b"]}}'}}
default: {{content: "Sure! Here are the topics: a, b"}}
"""


def _project(tmp_path: Path, max_steps: int) -> Path:
    (tmp_path / "rules.yaml").write_text(RULES)
    path = tmp_path / "workflow.yaml"
    path.write_text(WORKFLOW.replace("MAX", str(max_steps)))
    return path


def test_the_parse_error_is_fed_back_and_the_agent_recovers(tmp_path: Path) -> None:
    run = run_workflow(_project(tmp_path, 3))
    assert run.status == RunStatus.completed, run.error
    assert run.output == {"topics": ["a", "b"]}


def test_an_agent_that_never_answers_json_fails_once_its_turns_are_spent(tmp_path: Path) -> None:
    run = run_workflow(_project(tmp_path, 1))
    assert run.status == RunStatus.failed
    assert run.error is not None
    assert "must answer in JSON but did not within max_steps=1" in run.error.message
    assert run.error.attempts == 1  # not retried: a replay could only repeat it
