"""The agentfn CLI as a user runs it: real processes, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.collaboration_team import write_team
from tests.support.engine_harness import project

ROOT = Path(__file__).resolve().parents[2]


def agentfn(
    *args: str, home: Path, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTFN_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "agentfn.functions.local.cli", "--home", str(home), *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_init_run_list_show_replay(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proj = tmp_path / "proj"
    assert agentfn("init", str(proj), home=home).returncode == 0
    assert sorted(p.name for p in proj.iterdir()) == [
        "model_rules.yaml",
        "tools.py",
        "workflow.yaml",
    ]
    again = agentfn("init", str(proj), home=home)
    assert "already exists" in one_error_line(again)

    ok = agentfn("validate", str(proj / "workflow.yaml"), home=home)
    assert ok.returncode == 0 and "research-brief" in ok.stdout

    done = agentfn(
        "run", str(proj / "workflow.yaml"), "-i", "subject=edge AI", "--workers", "2", home=home
    )
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stdout and "A full brief" in done.stdout
    for label in ("steps", "tokens", "cost", "wall time"):
        assert label in done.stdout

    listing = agentfn("runs", "list", home=home)
    assert listing.returncode == 0 and "research-brief" in listing.stdout
    shown = agentfn("runs", "list", home=home).stdout
    run_id = next(word for word in shown.split() if word.startswith("run_"))
    doc = json.loads(agentfn("runs", "show", run_id, "--json", home=home).stdout)
    assert doc["run"]["status"] == "completed"
    assert {s["key"] for s in doc["steps"]} >= {"plan@0", "research", "risk", "done"}
    assert len(doc["prompts"]) == 8  # planner, 3 researchers x 2 turns, writer
    assert all(p["reply"]["usage"] for p in doc["prompts"])
    assert agentfn("runs", "show", run_id, home=home).returncode == 0

    replayed = agentfn("replay", run_id, "--workers", "0", home=home)
    assert replayed.returncode == 0 and "completed" in replayed.stdout
    assert "outputs: the same" in replayed.stdout and "plan@0" in replayed.stdout  # the diff

    changed = agentfn(
        "replay", run_id, "--workers", "0", "--temperature", "0.1",
        "--instructions", "writer=Write the brief. " + "Be thorough. " * 20, home=home,
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert "→" in changed.stdout and "tokens" in changed.stdout
    ghost = agentfn("replay", run_id, "--instructions", "ghost=Boo.", home=home)
    assert "has no agent 'ghost'" in one_error_line(ghost)
    assert "give AGENT=TEXT" in one_error_line(
        agentfn("replay", run_id, "--instructions", "x", home=home)
    )


@pytest.mark.parametrize(
    ("body", "args", "expected"),
    [
        ("nodes:\n  - {id: a, type: tool, tool: nope}\n", [], "unknown tool 'nope'"),
        (
            "nodes:\n  - {id: a, type: condition, expression: 'open(1)'}\n",
            [],
            "call to unknown function 'open'",
        ),
        ("nodes: {\n", [], "invalid YAML"),
        (
            "inputs:\n  n: {type: integer}\nnodes:\n  - {id: a, type: condition, expression: '1'}\n",
            [],
            "missing input 'n'",
        ),
        (
            "inputs:\n  n: {type: integer}\nnodes:\n  - {id: a, type: condition, expression: '1'}\n",
            ["-i", "n=x"],
            "input 'n' must be of type integer, got str",
        ),
        (
            "nodes:\n  - {id: a, type: condition, expression: '1'}\n",
            ["-i", "novalue"],
            "must look like name=value",
        ),
        (
            "nodes:\n  - {id: a, type: condition, expression: '1'}\n",
            ["--input-json", "[1"],
            "not valid JSON",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, body: str, args: list[str], expected: str
) -> None:
    wf = project(tmp_path, body)
    result = agentfn("run", str(wf), "--workers", "0", *args, home=tmp_path / "home")
    assert expected in one_error_line(result)


def test_unknown_run_and_missing_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert "no run 'run_nope'" in one_error_line(agentfn("runs", "show", "run_nope", home=home))
    assert "file not found" in one_error_line(agentfn("validate", "missing.yaml", home=home))
    assert agentfn("run", home=home).returncode == 2  # usage error from the parser


def test_failed_run_exits_1_and_shows_the_error(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        "nodes:\n  - {id: boom, type: tool, tool: explode, args: {message: bad}, "
        "retry: {max_attempts: 1}}\n",
    )
    result = agentfn("run", str(wf), "--workers", "1", home=tmp_path / "home")
    assert result.returncode == 1
    assert "failed" in result.stdout and "boom: RuntimeError: bad" in result.stdout


def test_signal_resumes_a_waiting_run(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        "nodes:\n  - {id: gate, type: wait, signal: approve}\n"
        "  - {id: after, type: tool, tool: record, args: {label: '{{ steps.gate.output.payload }}'}}\n"
        "edges:\n  - {from: gate, to: after}\n",
    )
    home = tmp_path / "home"
    parked = agentfn("run", str(wf), "--workers", "0", home=home)
    assert parked.returncode == 3 and "waiting" in parked.stdout  # 3: parked on a wait
    run_id = next(w for w in parked.stdout.split() if w.startswith("run_"))
    assert f"agentfn signal {run_id} approve" in parked.stderr
    assert "a worker must then be running" in parked.stderr
    assert "not waiting for signal 'nope'" in one_error_line(
        agentfn("signal", run_id, "nope", home=home)
    )
    sent = agentfn("signal", run_id, "approve", "--payload", '"yes"', home=home)
    assert sent.returncode == 0, sent.stderr


def test_demo_runs_the_bundled_example(tmp_path: Path) -> None:
    result = agentfn("demo", home=tmp_path / "demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "2 worker processes" in out
    assert "research parallel finished (3 branches)" in out
    assert "write_short agent skipped" in out
    assert "completed" in out and "A full brief" in out


def test_version(tmp_path: Path) -> None:
    from agentfn import __version__

    result = agentfn("--version", home=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"agentfn {__version__}"


def test_home_on_a_file_is_one_line(tmp_path: Path) -> None:
    file = tmp_path / "not-a-folder"
    file.write_text("x")
    assert "is a file, not a folder" in one_error_line(agentfn("runs", "list", home=file))


def test_brackets_in_an_error_are_printed_as_written(tmp_path: Path) -> None:
    wf = project(tmp_path, "nodes:\n  - {id: a, type: agent, agent: echo}\n")
    wf.write_text(wf.read_text().replace("tools: [tools.py]", "tools: ['[aws,openai].py']"))
    line = one_error_line(agentfn("validate", str(wf), home=tmp_path / "home"))
    assert "tool module '[aws,openai].py' not found" in line


def test_a_string_input_keeps_digits_as_text(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        "inputs:\n  order_id: {type: string}\n"
        "nodes:\n  - {id: a, type: tool, tool: record, args: {label: '{{ input.order_id }}'}}\n",
    )
    home = tmp_path / "home"
    done = agentfn("run", str(wf), "-i", "order_id=00123", "--workers", "0", home=home)
    assert done.returncode == 0, done.stderr
    (line,) = agentfn("runs", "list", "--json", home=home).stdout.splitlines()
    assert json.loads(line)["input"] == {"order_id": "00123"}


def test_runs_list_prints_whole_ids_and_prefixes_find_runs(tmp_path: Path) -> None:
    wf = project(tmp_path, "nodes:\n  - {id: gate, type: wait, signal: approve}\n")
    home = tmp_path / "home"
    parked = agentfn("run", str(wf), "--workers", "0", home=home)
    run_id = next(w for w in parked.stdout.split() if w.startswith("run_"))
    env_narrow = agentfn("runs", "list", home=home)  # COLUMNS=200 in agentfn(); ids never cut
    assert run_id in env_narrow.stdout
    shown = agentfn("runs", "show", run_id[:12], "--json", home=home)
    assert shown.returncode == 0 and json.loads(shown.stdout)["run"]["id"] == run_id
    assert "no run 'run_zzz'" in one_error_line(agentfn("runs", "show", "run_zzz", home=home))
    cancelled = agentfn("cancel", run_id[:12], home=home)
    assert cancelled.returncode == 0 and f"run {run_id}: cancelled" in cancelled.stdout
    assert "already cancelled" in one_error_line(agentfn("cancel", run_id, home=home))


# ------------------------------------------------------------------ collaborate

# The translator's model is down: its every call fails, as a throttled provider's would.
COLLAB_RULES = """\
rules:
  - agent: translator
    reply: {error: "overloaded, try again later", transient: true}
  - agent: critic
    reply: {content: "reviewed: {last_user}"}
  - match: "(?P<text>.*)"
    agent: writer-a
    reply: {content: "a wrote: {text}"}
  - match: "(?P<text>.*)"
    agent: writer-b
    reply: {content: "b wrote: {text}"}
"""


def collaboration(tmp_path: Path, subtasks: list[dict[str, object]]) -> Path:
    path = write_team(tmp_path / "collab", COLLAB_RULES).with_name("plan.yaml")
    path.write_text(json.dumps({"team": "team.yaml", "subtasks": subtasks}))
    return path


def fifty_subtasks() -> list[dict[str, object]]:
    """Ten independent chains of four writing subtasks, each chain reviewed at its end."""
    subs: list[dict[str, object]] = []
    for chain in range(10):
        for link in range(4):
            deps = [f"c{chain}_{link - 1}"] if link else []
            subs.append(
                {"id": f"c{chain}_{link}", "task": f"Part {link} of {chain}.",
                 "capability": "write", "depends_on": deps}
            )  # fmt: skip
        subs.append(
            {"id": f"review{chain}", "task": f"Review chain {chain}.", "capability": "review",
             "depends_on": [f"c{chain}_3", f"c{chain}_1"]}
        )  # fmt: skip
    return subs


def subtask_results(home: Path) -> dict[str, tuple[str, Any]]:
    from agentfn.collaboration import collaboration_view
    from agentfn.functions.runtime import build_engine
    from agentfn.settings import Settings

    engine = build_engine(Settings.from_env({}, home=home))
    [run], _ = engine.store.list_runs()
    view = collaboration_view(engine.store, run.id)
    assert view.status == "completed", view.failures
    return {s.id: (s.agent, engine.store.node_output(run.id, s.id)) for s in view.subtasks}


def test_a_fifty_subtask_collaboration_gives_the_same_results_on_four_workers_as_on_one(
    tmp_path: Path,
) -> None:
    plan = collaboration(tmp_path, fifty_subtasks())
    results = {}
    for workers in (1, 4):
        home = tmp_path / f"home{workers}"
        result = agentfn("collaborate", str(plan), "--workers", str(workers), home=home)
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert "[50/50]" in result.stdout
        results[workers] = subtask_results(home)
    assert len(results[1]) == 50
    assert results[4] == results[1]
    agent, text = results[1]["review3"]
    assert agent == "critic" and isinstance(text, str)
    assert text.startswith("reviewed: Review chain 3.") and "wrote: Part 3 of 3." in text


def test_collaborate_keeps_the_other_results_when_a_subtask_fails_and_exits_1(
    tmp_path: Path,
) -> None:
    retry = {"max_attempts": 2, "backoff": {"base_s": 0, "max_s": 0}}
    plan = collaboration(
        tmp_path,
        [
            {"id": "draft", "task": "Draft.", "capability": "write"},
            {"id": "german", "task": "Translate.", "capability": "translate",
             "depends_on": ["draft"], "retry": retry},
            {"id": "merge", "task": "Merge.", "capability": "review",
             "depends_on": ["german", "draft"]},
            {"id": "notes", "task": "Notes.", "capability": "write", "depends_on": ["draft"]},
        ],
    )  # fmt: skip
    result = agentfn("collaborate", str(plan), "--workers", "1", home=tmp_path / "home")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "german translator failed after 2 attempt(s): TransientModelError" in result.stdout
    assert "merge critic skipped (not run: dependency german did not complete)" in result.stdout
    assert "partially_failed" in result.stdout
    assert "1 subtask(s) failed: german (TransientModelError); 1 skipped" in result.stderr
    assert "b wrote: Notes." in result.stdout  # the output: what completed


@pytest.mark.parametrize(
    ("subtasks", "expected"),
    [
        (
            [{"id": "a", "task": "A.", "capability": "write", "depends_on": ["b"]},
             {"id": "b", "task": "B.", "capability": "write", "depends_on": ["a"]}],
            "plan.yaml:1: subtasks[0].depends_on: the plan has a cycle: a -> b -> a",
        ),
        (
            [{"id": "a", "task": "A.", "capability": "sing"}],
            "plan.yaml:1: subtasks[0].capability: subtask 'a' needs capability 'sing', which no agent",
        ),
        ([{"id": "a", "task": "A."}], "plan.yaml:1: subtasks[0].capability: Field required"),
    ],
)  # fmt: skip
def test_a_collaboration_that_cannot_run_is_one_line_and_exit_2(
    tmp_path: Path, subtasks: list[dict[str, object]], expected: str
) -> None:
    plan = collaboration(tmp_path, subtasks)
    line = one_error_line(agentfn("collaborate", str(plan), home=tmp_path / "home"))
    assert expected in line


def planned(tmp_path: Path, plan: dict[str, object]) -> Path:
    """A collaboration file with a task, and a team whose planner answers ``plan``."""
    rules = COLLAB_RULES.replace(
        "rules:\n",
        f"rules:\n  - agent: planner\n    reply: {{content: {json.dumps(json.dumps(plan))}}}\n",
    )
    team = write_team(tmp_path / "collab", rules)
    team.write_text(
        team.read_text().replace(
            "agents:\n", "agents:\n  planner: {instructions: Plan., capabilities: [plan]}\n"
        )
    )
    path = team.with_name("task.yaml")
    path.write_text("team: team.yaml\ntask:\n  task: Write the launch note.\n")
    return path


def test_collaborate_from_a_task_runs_the_planners_plan(tmp_path: Path) -> None:
    plan = {"subtasks": [
        {"id": "draft", "task": "Draft.", "capability": "write"},
        {"id": "review", "task": "Review.", "capability": "review", "depends_on": ["draft"]},
    ]}  # fmt: skip
    result = agentfn("collaborate", str(planned(tmp_path, plan)), home=tmp_path / "home")
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "[2/2]" in result.stdout and "reviewed: Review." in result.stdout


def test_collaborate_refuses_a_planners_unsound_plan_with_the_tasks_line(tmp_path: Path) -> None:
    plan = {"subtasks": [{"id": "a", "task": "A.", "capability": "sing"}]}
    line = one_error_line(
        agentfn("collaborate", str(planned(tmp_path, plan)), home=tmp_path / "home")
    )
    assert "task.yaml:2: task: planner 'planner' gave an unsound plan: subtask 'a' needs" in line


def test_a_conversation_on_a_thread_then_shown_and_deleted(tmp_path: Path) -> None:
    home = tmp_path / "home"
    rules = tmp_path / "chat" / "rules.yaml"
    rules.parent.mkdir()
    rules.write_text(
        "rules:\n"
        "  - match: 'my name\\?'\n"
        "    earlier: 'name is (?P<name>\\w+)'\n"
        "    reply: {content: 'You are {name}.'}\n"
        "default: {content: 'Noted.'}\n"
    )
    flow = rules.parent / "chat.yaml"
    flow.write_text(
        "name: chat\n"
        "models: {default: {provider: scripted, rules: rules.yaml}}\n"
        "agents: {helper: {instructions: Help.}}\n"
        "inputs: {say: {type: string}}\n"
        "nodes: [{id: reply, type: agent, agent: helper, prompt: '{{ input.say }}'}]\n"
    )

    def say(text: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return agentfn("run", str(flow), "-i", f"say={text}", "--workers", "0", *extra, home=home)

    assert say("My name is Ada.", "--thread", "t1", "--thread-ttl", "3600").returncode == 0
    answered = say("What is my name?", "--thread", "t1")
    assert answered.returncode == 0 and "You are Ada." in answered.stdout, answered.stdout
    assert "You are Ada." not in say("What is my name?").stdout  # no thread, no history

    shown = agentfn("threads", "show", "t1", home=home)
    assert shown.returncode == 0, shown.stderr
    assert "4 messages from 2 run(s)" in shown.stdout and "helper: You are Ada." in shown.stdout
    doc = json.loads(agentfn("threads", "show", "t1", "--json", home=home).stdout)
    assert doc["ttl_s"] == 3600 and len(doc["runs"]) == 2

    deleted = agentfn("threads", "delete", "t1", home=home)
    assert deleted.returncode == 0 and "2 run(s)" in deleted.stdout, deleted.stderr
    assert "not found" in one_error_line(agentfn("threads", "show", "t1", home=home))
    listed = agentfn("runs", "list", "--json", home=home).stdout.splitlines()
    assert len(listed) == 1  # only the run without a thread is left
    assert "thread" in one_error_line(agentfn("threads", "show", "../x", home=home))
    assert "--thread" in one_error_line(say("hi", "--thread-ttl", "60"))
    assert "thread" in one_error_line(say("hi", "--thread", "no/slash"))
