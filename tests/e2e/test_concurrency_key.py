"""A concurrency key holds across worker processes: four workers drain 50 steps of a key limited
to 2 and never run more than 2 at once; the waiting steps burn none of their attempts."""

from __future__ import annotations

import time
from pathlib import Path

from agentfn.functions.local.workers import WorkerPool
from agentfn.functions.runtime import build_engine
from agentfn.runs import RunStatus
from agentfn.settings import Settings
from agentfn.workflows import load_blueprint

TOOLS = """
import time

from agentfn.tools import tool


@tool
def call_api(index: int, log: str) -> int:
    with open(log, "a") as f:
        f.write(f"start {index} {time.time()}\\n")
    time.sleep(0.1)
    with open(log, "a") as f:
        f.write(f"end {index} {time.time()}\\n")
    return index
"""

WORKFLOW = """
name: limited
tools: [tools.py]
concurrency: {key: partner-api, limit: 2}
inputs:
  items: {type: array}
  log: {type: string}
nodes:
  - id: calls
    type: parallel
    for_each: input.items
    max_items: 50
    tool: call_api
    args: {index: "{{ item }}", log: "{{ input.log }}"}
output: "{{ steps.calls.output }}"
"""


def most_at_once(log: Path) -> int:
    events = []
    for line in log.read_text().splitlines():
        kind, _, at = line.split()
        events.append((float(at), 0 if kind == "end" else 1))  # an end first at a tie
    running = peak = 0
    for _, starts in sorted(events):
        running += 1 if starts else -1
        peak = max(peak, running)
    return peak


def test_four_workers_never_run_more_than_two_steps_of_a_key_of_two(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "tools.py").write_text(TOOLS)
    (project / "limited.yaml").write_text(WORKFLOW)
    log = tmp_path / "calls.log"
    settings = Settings.from_env({"AGENTFN_PROJECT": str(project)}, home=tmp_path / "home")
    engine = build_engine(settings)
    run = engine.start(
        load_blueprint(project / "limited.yaml"), {"items": list(range(50)), "log": str(log)}
    )
    with WorkerPool(settings, 4):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = engine.store.get(run.id)
            if done.status.terminal:
                break
            time.sleep(0.2)
    assert done.status is RunStatus.completed, done.error
    assert done.output == list(range(50))
    assert log.read_text().count("start") == 50  # each call once
    assert most_at_once(log) == 2  # the limit, and it was used
    steps = list(engine.store.steps(run.id))
    assert len([s for s in steps if s.key.startswith("calls[")]) == 50
    assert {s.attempt for s in steps} == {1}  # waiting burned no attempts
    assert engine.slots.holders("partner-api") == {}  # every slot given back
