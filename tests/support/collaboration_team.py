"""The team the collaboration tests share: two writers, a translator and a critic on the
scripted model, with rules each test gives (a rule file, in the team's folder)."""

from __future__ import annotations

from pathlib import Path

from agentfn.workflows import LoadedBlueprint, load_blueprint

TEAM = """\
name: team
models:
  default: {provider: scripted, rules: rules.yaml, max_retries: 1}  # a failure is the step's
agents:
  writer-a: {instructions: Write., capabilities: [write]}
  writer-b: {instructions: Write., capabilities: [write]}
  translator: {instructions: Translate., capabilities: [translate]}
  critic: {instructions: Review., capabilities: [review]}
nodes:
  - {id: unused, type: agent, agent: critic}
"""
# Every agent echoes its prompt.
ECHO_RULES = 'default:\n  content: "done: {last_user}"\n'


def write_team(folder: Path, rules: str = ECHO_RULES) -> Path:
    """The team's blueprint and rule file in ``folder``; returns the blueprint's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules.yaml").write_text(rules)
    (folder / "team.yaml").write_text(TEAM)
    return folder / "team.yaml"


def load_team(folder: Path, rules: str = ECHO_RULES) -> LoadedBlueprint:
    return load_blueprint(write_team(folder, rules))
